import "../lib/language";
import { mount } from "svelte";
import "../app.css";
import { closeOnEscape } from "../lib/keys";
import Dashboard from "./Dashboard.svelte";

// Every module is loaded and evaluated here (imports run first): a mark for the breakdown
// of the open → first paint benchmark.
performance.mark("main");
const target = document.getElementById("app");
if (target) mount(Dashboard, { target });
closeOnEscape();

import "../lib/language";
import { mount } from "svelte";
import "../app.css";
import Dashboard from "./Dashboard.svelte";

const target = document.getElementById("app");
if (target) mount(Dashboard, { target });

import "../lib/language";
import { mount } from "svelte";
import "../app.css";
import { closeOnEscape } from "../lib/keys";
import Settings from "./Settings.svelte";

const target = document.getElementById("app");
if (target) mount(Settings, { target });
closeOnEscape();

import "../lib/language";
import { mount } from "svelte";
import "../app.css";
import { closeOnEscape } from "../lib/keys";
import Purchase from "./Purchase.svelte";

const target = document.getElementById("app");
if (target) mount(Purchase, { target });
closeOnEscape();

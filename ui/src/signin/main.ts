import "../lib/language";
import { mount } from "svelte";
import "../app.css";
import { closeOnEscape } from "../lib/keys";
import SignIn from "./SignIn.svelte";

const target = document.getElementById("app");
if (target) mount(SignIn, { target });
closeOnEscape();

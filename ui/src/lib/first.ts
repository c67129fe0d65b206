// The dashboard's first data, put into its page by the app before the page's code runs
// (src-tauri/src/windows.rs): the window paints without waiting on an IPC round trip.
import type { FirstDashboard } from "../generated/FirstDashboard";

declare global {
  interface Window {
    __CREDITBAR_FIRST__?: FirstDashboard;
  }
}

/** The data the app handed this page, once; undefined when it had none to give. */
export function takeFirst(): FirstDashboard | undefined {
  const first = window.__CREDITBAR_FIRST__;
  delete window.__CREDITBAR_FIRST__;
  return first;
}

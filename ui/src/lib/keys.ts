// Escape closes the window: each of creditbar's windows is a dialog over the tray (sign in,
// dashboard, purchase, settings), and Escape closes a dialog (WAI-ARIA dialog pattern).
// A control that uses Escape itself (an open <select>, an input method composing) keeps it.

import { getCurrentWindow } from "@tauri-apps/api/window";

export function closeOnEscape(target: Pick<Window, "addEventListener"> = window, close: () => unknown = () => getCurrentWindow().close()): void {
  target.addEventListener("keydown", (event: KeyboardEvent) => {
    if (event.key !== "Escape" || event.defaultPrevented || event.isComposing) return;
    event.preventDefault();
    void close();
  });
}

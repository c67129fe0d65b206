import { describe, expect, it } from "vitest";
import { closeOnEscape } from "./keys";

function key(init: { key: string; defaultPrevented?: boolean; isComposing?: boolean }) {
  return { defaultPrevented: false, isComposing: false, preventDefault() {}, ...init } as unknown as KeyboardEvent;
}

describe("Escape closes the window", () => {
  it("closes on Escape and on nothing else", () => {
    let listener: ((e: KeyboardEvent) => void) | null = null;
    const target = { addEventListener: (_: string, l: (e: KeyboardEvent) => void) => (listener = l) } as unknown as Window;
    let closed = 0;
    closeOnEscape(target, () => closed++);
    listener!(key({ key: "Enter" }));
    listener!(key({ key: "Escape", defaultPrevented: true }));
    listener!(key({ key: "Escape", isComposing: true }));
    expect(closed).toBe(0);
    listener!(key({ key: "Escape" }));
    expect(closed).toBe(1);
  });
});

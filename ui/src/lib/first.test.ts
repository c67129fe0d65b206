import { describe, expect, it } from "vitest";
import { takeFirst } from "./first";
import type { FirstDashboard } from "../generated/FirstDashboard";

describe("takeFirst", () => {
  it("hands over the app's first data once, so a later reload asks over IPC", () => {
    const first = { group_by: "model", period_days: 7, data: {} } as unknown as FirstDashboard;
    (globalThis as { window?: unknown }).window = { __CREDITBAR_FIRST__: first };
    expect(takeFirst()).toBe(first);
    expect(takeFirst()).toBeUndefined();
  });

  it("is undefined when the app had nothing to give", () => {
    (globalThis as { window?: unknown }).window = {};
    expect(takeFirst()).toBeUndefined();
  });
});

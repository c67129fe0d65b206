import { describe, expect, it } from "vitest";
import { forecastText } from "./forecast";

// The engine computes the forecast (crates/client/src/views.rs); the page words it.
describe("the forecast, worded", () => {
  const tz = "America/New_York";
  it("names the reset by date and never as the run-out time", () => {
    expect(forecastText({ kind: "runs_out", left: { n: 3, unit: "day" }, reset_at: "2026-12-20T05:00:00Z" }, tz, "en-US")).toBe(
      "At this pace you run out in about 3 days — before your reset on Dec 20.",
    );
    expect(forecastText({ kind: "lasts_past_reset", reset_at: "2026-12-20T05:00:00Z" }, tz, "en-US")).toBe(
      "At this pace your credits last past your reset on Dec 20.",
    );
  });
  it("says hours under a day, in the singular when one", () => {
    expect(forecastText({ kind: "runs_out", left: { n: 1, unit: "hour" }, reset_at: null }, tz, "en-US")).toBe(
      "At this pace you run out in about 1 hour.",
    );
  });
  it("out of credits and no usage", () => {
    expect(forecastText({ kind: "out", reset_at: null }, tz)).toBe("You are out of credits.");
    expect(forecastText({ kind: "no_usage" }, tz)).toContain("nothing to forecast");
    expect(forecastText(null, tz)).toBe("");
  });
  it("dates in the person's language", () => {
    expect(forecastText({ kind: "out", reset_at: "2026-12-01T12:00:00Z" }, tz, "de-DE")).toContain("1. Dez.");
  });
});

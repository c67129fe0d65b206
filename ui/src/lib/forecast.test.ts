import { describe, expect, it } from "vitest";
import { burnRate, daysEndingOn, forecastSentence, localDay } from "./forecast";

const CR = 1_000_000;
const now = new Date("2026-11-21T18:00:00Z");
const dec1 = new Date("2026-12-01T09:00:00Z");

describe("burn-rate forecast", () => {
  it("never reads as the reset time", () => {
    const s = forecastSentence(100 * CR, 50 * CR, now, dec1, "Europe/Paris");
    expect(s).toBe("At this pace you run out in about 2 days — before your reset on Dec 1.");
    expect(s).toMatch(/run out in about 2 days/);
  });
  it("says when credits outlast the reset", () => {
    expect(forecastSentence(1000 * CR, 10 * CR, now, dec1, "Europe/Paris")).toBe("At this pace your credits last past your reset on Dec 1.");
  });
  it("handles hours, empty and idle accounts", () => {
    expect(forecastSentence(5 * CR, 60 * CR, now, dec1, "UTC")).toBe("At this pace you run out in about 2 hours — before your reset on Dec 1.");
    expect(forecastSentence(0, 60 * CR, now, dec1, "UTC")).toBe("You are out of credits. More arrive with your reset on Dec 1.");
    expect(forecastSentence(5 * CR, 0, now, dec1, "UTC")).toMatch(/nothing to forecast/);
  });
  it("dates the reset in the account's timezone", () => {
    const lateUtc = new Date("2026-11-30T23:30:00Z");
    expect(forecastSentence(100 * CR, 50 * CR, now, lateUtc, "Europe/Paris")).toContain("Dec 1");
    expect(forecastSentence(100 * CR, 50 * CR, now, lateUtc, "America/New_York")).toContain("Nov 30");
  });
  it("averages the last seven days", () => {
    const days = [
      { key: "2026-11-10", charged: 999 * CR },
      ...[15, 16, 17, 18, 19, 20, 21].map((d) => ({ key: `2026-11-${d}`, charged: 7 * CR })),
    ].map((d) => ({ ...d, events: 1, input_tokens: 0, cached_input_tokens: 0, output_tokens: 0 }));
    expect(burnRate(days, "2026-11-21")).toBe(7_000_000n);
    expect(burnRate([], "2026-11-21")).toBe(0n);
  });
  it("counts only the last 7 calendar days, not the last 7 days with usage", () => {
    const day = (key: string, credits: number) => ({ key, charged: credits * CR, events: 1, input_tokens: 0, cached_input_tokens: 0, output_tokens: 0 });
    const days = [day("2026-10-01", 700), day("2026-11-15", 70), day("2026-11-21", 7)];
    expect(burnRate(days, "2026-11-21")).toBe(11_000_000n);
  });
  it("takes the app's decimal strings and stays exact above 2^53 µcr", () => {
    const days = [{ key: "2026-11-21", charged: "63050394783186951" }];
    // 63,050,394,783,186,951 µcr over 7 days: 9,007,199,254,740,993 µcr a day, exactly.
    expect(burnRate(days, "2026-11-21")).toBe(9_007_199_254_740_993n);
    expect(forecastSentence("18014398509481986", "9007199254740993", now, dec1, "UTC")).toBe(
      "At this pace you run out in about 2 days — before your reset on Dec 1.",
    );
  });
});

describe("days in the account's timezone", () => {
  it("is already tomorrow in Paris when it is late evening in UTC", () => {
    const lateUtc = new Date("2026-11-21T23:45:00Z");
    expect(localDay(lateUtc, "Europe/Paris")).toBe("2026-11-22");
    expect(localDay(lateUtc, "UTC")).toBe("2026-11-21");
    expect(localDay(lateUtc, "America/Los_Angeles")).toBe("2026-11-21");
  });
  it("lists calendar days across a month end", () => {
    expect(daysEndingOn("2026-12-02", 4)).toEqual(["2026-11-29", "2026-11-30", "2026-12-01", "2026-12-02"]);
    expect(daysEndingOn("2026-12-02", 0)).toEqual([]);
  });
});

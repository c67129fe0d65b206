import { describe, expect, it } from "vitest";
import { chartCredits, credits, creditsPlain, dollars, parseDollars, quoteCustom } from "./money";

// As the app sends it: 64-bit integers as decimal strings.
const pricing = { credits_per_dollar: "25", min_cents: "500", max_cents: "100000" };

describe("amounts for people", () => {
  it("formats credits exactly", () => {
    expect(credits(487_250_000)).toBe("487.25 credits");
    expect(credits(1_000_000)).toBe("1 credit");
    expect(credits(12_500_000_000)).toBe("12,500 credits");
    expect(credits(1)).toBe("0.000001 credits");
    expect(dollars(2000)).toBe("$20.00");
    expect(dollars(5)).toBe("$0.05");
  });
  it("stays exact above 2^53 µcr, where a JavaScript number cannot", () => {
    // 2^53 + 1 µcr of grant on top of 505 credits: a number would read ...992.
    expect(credits("9007199759740993")).toBe("9,007,199,759.740993 credits");
    expect(credits(9_007_199_759_740_993n)).toBe("9,007,199,759.740993 credits");
    expect(credits("9223372036854775807")).toBe("9,223,372,036,854.775807 credits");
    expect(credits("-9223372036854775808")).toBe("-9,223,372,036,854.775808 credits");
    expect(creditsPlain("9007199759740993")).toBe("9007199759.740993");
    expect(creditsPlain("50000000")).toBe("50");
    expect(dollars("900719925474099312")).toBe("$9,007,199,254,740,993.12");
    expect(chartCredits("9007199759740993")).toBe(9_007_199_759.74);
    expect(chartCredits("1500000")).toBe(1.5);
  });
  it("parses dollars into integer cents", () => {
    expect(parseDollars("12")).toBe(1200n);
    expect(parseDollars("12.5")).toBe(1250n);
    expect(parseDollars("$12.05")).toBe(1205n);
    expect(parseDollars("12.345")).toBeNull();
    expect(parseDollars("-3")).toBeNull();
    expect(parseDollars("abc")).toBeNull();
  });
});

describe("custom amount price as you type", () => {
  it("buys 25 credits per dollar", () => {
    expect(quoteCustom("20", pricing)).toEqual({ ok: true, cents: 2000n, micros: 500_000_000n });
    expect(quoteCustom("5.01", pricing)).toEqual({ ok: true, cents: 501n, micros: 125_250_000n });
  });
  it("explains amounts it refuses", () => {
    expect(quoteCustom("4.99", pricing)).toEqual({ ok: false, problem: "The smallest custom amount is $5.00." });
    expect(quoteCustom("1000.01", pricing)).toEqual({ ok: false, problem: "The largest custom amount is $1,000.00." });
    expect(quoteCustom("ten", pricing).ok).toBe(false);
    expect(quoteCustom("", pricing).ok).toBe(false);
  });
});

import { autoRefillSentence, parseCredits } from "./money";

describe("settings amounts", () => {
  it("parses credits exactly", () => {
    expect(parseCredits("50")).toBe(50_000_000n);
    expect(parseCredits("12.5")).toBe(12_500_000n);
    expect(parseCredits("0.000001")).toBe(1n);
    expect(parseCredits("9007199759.740993")).toBe(9_007_199_759_740_993n);
    expect(parseCredits("1.0000001")).toBeNull();
    expect(parseCredits("-5")).toBeNull();
  });
  it("says plainly what auto-refill will charge and when", () => {
    expect(autoRefillSentence(50_000_000, 500_000_000, 2000, "visa •••• 4242", 3)).toBe(
      "When your balance falls below 50 credits, creditbar buys 500 credits for $20.00 with visa •••• 4242 — at most 3 times a month.",
    );
    expect(autoRefillSentence(1_000_000, 500_000_000, 2000, "visa •••• 4242", 1)).toMatch(/at most once a month/);
  });
});

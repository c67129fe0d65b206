import { describe, expect, it } from "vitest";
import { credits, dollars, parseDollars, quoteCustom } from "./money";

const pricing = { credits_per_dollar: 25, min_cents: 500, max_cents: 100_000 };

describe("amounts for people", () => {
  it("shows two decimals, rounded down, grouped by the locale", () => {
    expect(credits(487_250_000, "en-US")).toBe("487.25 credits");
    expect(credits(663_307_700, "en-US")).toBe("663.30 credits");
    expect(credits(133_829_750, "en-US")).toBe("133.82 credits");
    expect(credits(1_000_000, "en-US")).toBe("1.00 credits");
    expect(credits(12_500_000_000, "en-US")).toBe("12,500.00 credits");
    expect(credits(1_234_509_999, "en-US")).toBe("1,234.50 credits");
    expect(credits(1, "en-US")).toBe("0.00 credits");
    expect(credits(-3_456_000, "en-US")).toBe("-3.45 credits");
    expect(credits(1_234_509_999, "de-DE")).toBe("1.234,50 credits");
    expect(credits(1_234_509_999, "fr-FR")).toBe("1\u202f234,50 credits");
    expect(dollars(2000, "en-US")).toBe("$20.00");
    expect(dollars(5, "en-US")).toBe("$0.05");
    expect(dollars(123_456, "de-DE")).toBe("1.234,56\u00a0$");
  });
  it("parses dollars into integer cents", () => {
    expect(parseDollars("12")).toBe(1200);
    expect(parseDollars("12.5")).toBe(1250);
    expect(parseDollars("$12.05")).toBe(1205);
    expect(parseDollars("12.345")).toBeNull();
    expect(parseDollars("-3")).toBeNull();
    expect(parseDollars("abc")).toBeNull();
  });
});

describe("custom amount price as you type", () => {
  it("buys 25 credits per dollar", () => {
    expect(quoteCustom("20", pricing)).toEqual({ ok: true, cents: 2000, micros: 500_000_000 });
    expect(quoteCustom("5.01", pricing)).toEqual({ ok: true, cents: 501, micros: 125_250_000 });
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
    expect(parseCredits("50")).toBe(50_000_000);
    expect(parseCredits("12.5")).toBe(12_500_000);
    expect(parseCredits("0.000001")).toBe(1);
    expect(parseCredits("1.0000001")).toBeNull();
    expect(parseCredits("-5")).toBeNull();
  });
  it("says plainly what auto-refill will charge and when", () => {
    expect(autoRefillSentence(50_000_000, 500_000_000, 2000, "visa •••• 4242", 3)).toBe(
      "When your balance falls below 50.00 credits, creditbar buys 500.00 credits for $20.00 with visa •••• 4242 — at most 3 times a month.",
    );
    expect(autoRefillSentence(1_000_000, 500_000_000, 2000, "visa •••• 4242", 1)).toMatch(/at most once a month/);
  });
});

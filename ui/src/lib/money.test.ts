import { describe, expect, it } from "vitest";
import { chartCredits, credits, creditsPlain, dollars } from "./money";

// As the app sends it: 64-bit integers as decimal strings.

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
  it("stays exact above 2^53 µcr, where a JavaScript number cannot", () => {
    // 2^53 + 1 µcr of grant on top of 505 credits, as the app sends it.
    expect(credits("9007199759740993", "en-US")).toBe("9,007,199,759.74 credits");
    expect(credits(9_007_199_759_740_993n, "en-US")).toBe("9,007,199,759.74 credits");
    // A number reads this as 9007199254741000192 µcr and would show 9,007,199,254,741.00.
    expect(credits("9007199254740999999", "en-US")).toBe("9,007,199,254,740.99 credits");
    expect(credits("9223372036854775807", "en-US")).toBe("9,223,372,036,854.77 credits");
    expect(credits("-9223372036854775808", "en-US")).toBe("-9,223,372,036,854.77 credits");
    expect(credits("9223372036854775807", "de-DE")).toBe("9.223.372.036.854,77 credits");
    expect(creditsPlain("9007199759740993")).toBe("9007199759.740993");
    expect(creditsPlain("50000000")).toBe("50");
    // A number reads this as …992 cents and would show $9,007,199,254,740,992.00.
    expect(dollars("900719925474099312", "en-US")).toBe("$9,007,199,254,740,993.12");
    expect(dollars("-5", "en-US")).toBe("-$0.05");
    expect(dollars("900719925474099312", "de-DE")).toBe("9.007.199.254.740.993,12\u00a0$");
    expect(chartCredits("9007199759740993")).toBe(9_007_199_759.74);
    expect(chartCredits("1500000")).toBe(1.5);
  });
});

// Custom-amount quotes are the engine's (crates/client/src/views.rs, quote_custom).
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
      "When your balance falls below 50.00 credits, creditbar buys 500.00 credits for $20.00 with visa •••• 4242 — at most 3 times a month.",
    );
    expect(autoRefillSentence(1_000_000, 500_000_000, 2000, "visa •••• 4242", 1)).toMatch(/at most once a month/);
  });
});

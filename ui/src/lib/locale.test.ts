import { describe, expect, it } from "vitest";
import { creditsNumber, dollarsIn, shortDateIn, timeIn } from "./locale";

// Two locales that differ in every way that matters here: grouping and decimal marks,
// the currency's place, day-month order and 12- vs 24-hour clocks.
describe("numbers and dates in the user's locale", () => {
  const at = new Date("2026-12-01T14:05:00Z");
  it("en-US: 1,234.50, $20.00, Dec 1, 3:05 PM", () => {
    expect(creditsNumber(1_234_509_999, "en-US")).toBe("1,234.50");
    expect(dollarsIn(2000, "en-US")).toBe("$20.00");
    expect(shortDateIn(at, "Europe/Paris", "en-US")).toBe("Dec 1");
    expect(timeIn(at, "Europe/Paris", "en-US")).toMatch(/^3:05\s+PM$/u); // the space differs by ICU version
  });
  it("de-DE: 1.234,50, 20,00 $, 1. Dez., 15:05", () => {
    expect(creditsNumber(1_234_509_999, "de-DE")).toBe("1.234,50");
    expect(dollarsIn(2000, "de-DE")).toBe("20,00\u00a0$");
    expect(shortDateIn(at, "Europe/Paris", "de-DE")).toBe("1. Dez.");
    expect(timeIn(at, "Europe/Paris", "de-DE")).toBe("15:05");
  });
  it("en-GB keeps English words with a 24-hour clock", () => {
    expect(timeIn(at, "Europe/Paris", "en-GB")).toBe("15:05");
    expect(shortDateIn(at, "Europe/Paris", "en-GB")).toBe("1 Dec");
  });
  it("never shows more than is there", () => {
    expect(creditsNumber(999_999, "en-US")).toBe("0.99");
    expect(creditsNumber(-999_999, "en-US")).toBe("-0.99");
    expect(creditsNumber(9_999, "en-US")).toBe("0.00");
    expect(creditsNumber(-9_999, "en-US")).toBe("0.00");
  });
});

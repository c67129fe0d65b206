import { describe, expect, it } from "vitest";
import { repairNavigatorLanguage, usableLanguage } from "./language";

describe("the page language", () => {
  it("keeps tags Intl accepts", () => {
    expect(usableLanguage("fr-FR")).toBe("fr-FR");
    expect(usableLanguage("en-us")).toBe("en-US");
  });
  it("falls back to en-US for what WebKitGTK reports under C.UTF-8, and for nothing", () => {
    expect(() => new Intl.NumberFormat("C")).toThrow(RangeError);
    expect(usableLanguage("C")).toBe("en-US");
    expect(usableLanguage("")).toBe("en-US");
    expect(usableLanguage(undefined)).toBe("en-US");
  });
  it("repairs a navigator so Intl.NumberFormat(navigator.language) works", () => {
    const nav = { language: "C", languages: ["C", "de-DE"] } as unknown as Navigator;
    repairNavigatorLanguage(nav);
    expect(nav.language).toBe("en-US");
    expect(nav.languages).toEqual(["en-US", "de-DE"]);
    expect(new Intl.NumberFormat(nav.language).format(1234.5)).toBe("1,234.5");
  });
  it("leaves a good navigator alone", () => {
    const nav = { language: "de-DE", languages: ["de-DE"] } as unknown as Navigator;
    repairNavigatorLanguage(nav);
    expect(nav.language).toBe("de-DE");
  });
});

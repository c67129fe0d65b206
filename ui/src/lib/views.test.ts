import { describe, expect, it } from "vitest";
import { breakdownText, expiryText } from "./views";
import type { Lot } from "../generated/Lot";

const lot = (expiry: string, expires_at: string | null): Lot => ({ bucket: "bonus", available: "20000000", granted_at: null, expires_at, expiry });

describe("the dashboard's words for the engine's views", () => {
  it("says a lot's exact expiry, never, or that the server does not tell", () => {
    expect(expiryText(lot("at_reset", "2026-12-20T00:00:00Z"), (at) => `at ${at}`)).toBe("at 2026-12-20T00:00:00Z");
    expect(expiryText(lot("never", null), () => "x")).toBe("never expires");
    expect(expiryText(lot("not_reported", null), () => "x")).toBe("expiry not reported by the server");
  });
  it("says a bonus lot's exact expiry as the server reports it, and never when it says so", () => {
    expect(expiryText(lot("at", "2026-12-24T18:30:00Z"), (at) => `on ${at}`)).toBe("expires on 2026-12-24T18:30:00Z");
    expect(expiryText(lot("never", null), () => "x")).toBe("never expires");
  });
  it("lists what each bucket paid, exactly, in burn order", () => {
    const c = { id: "c", at: null, model: "m", thread: "t", charged: "7000001", by_bucket: [{ bucket: "daily", amount: "5000000" }, { bucket: "subscription", amount: "2000001" }] };
    expect(breakdownText(c, "en-US")).toBe("daily 5.00 credits · subscription 2.00 credits");
    expect(breakdownText({ ...c, by_bucket: [{ bucket: "purchased", amount: "123456789000000000" }] }, "de-DE")).toBe("purchased 123.456.789.000,00 credits");
  });
});

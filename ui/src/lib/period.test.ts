import { describe, expect, it } from "vitest";
import { purchasesInPeriod } from "./period";
import type { Purchase } from "../generated/Purchase";

const purchase = (id: string, created_at: string | null): Purchase => ({
  id,
  credits: "500000000",
  price_cents: "2000",
  status: "succeeded",
  source: "manual",
  pack: "pack_500",
  created_at,
});

describe("purchases in the dashboard's period", () => {
  // Nov 21 in Paris; the 7 days ending then start on Nov 15, Paris time.
  const all = [
    purchase("before", "2026-11-14T22:59:59Z"), // Nov 14, 23:59:59 in Paris
    purchase("first-day", "2026-11-14T23:00:00Z"), // Nov 15, 00:00 in Paris
    purchase("today", "2026-11-21T10:00:00Z"),
    purchase("in-flight", null),
  ];

  it("keeps the days of the period in the account's timezone, not UTC's", () => {
    const ids = purchasesInPeriod(all, 7, "2026-11-21", "Europe/Paris").map((p) => p.id);
    expect(ids).toEqual(["first-day", "today", "in-flight"]);
    // In UTC both late-Nov-14 purchases fall on Nov 14, before the period.
    expect(purchasesInPeriod(all, 7, "2026-11-21", "UTC").map((p) => p.id)).toEqual(["today", "in-flight"]);
  });

  it("keeps everything for all time, and a purchase still in flight always", () => {
    expect(purchasesInPeriod(all, null, "2026-11-21", "Europe/Paris")).toEqual(all);
    expect(purchasesInPeriod(all, 1, "2030-01-01", "UTC").map((p) => p.id)).toEqual(["in-flight"]);
  });
});

import { describe, expect, it } from "vitest";
import { checkCard, luhnValid } from "./card";

const now = new Date("2026-11-21T18:00:00Z");

describe("add-card form", () => {
  it("accepts the test cards", () => {
    expect(luhnValid("4242424242424242")).toBe(true);
    expect(checkCard({ number: "4242 4242 4242 4242", expiry: "12/30", cvc: "123" }, now)).toEqual({ ok: true, number: "4242424242424242", month: 12, year: 2030, cvc: "123" });
  });
  it("names the field that is wrong", () => {
    expect(checkCard({ number: "4242424242424241", expiry: "12/30", cvc: "123" }, now)).toMatchObject({ ok: false, field: "number" });
    expect(checkCard({ number: "4242424242424242", expiry: "10/26", cvc: "123" }, now)).toMatchObject({ ok: false, field: "expiry", problem: "This card has expired." });
    expect(checkCard({ number: "4242424242424242", expiry: "13/30", cvc: "123" }, now)).toMatchObject({ ok: false, field: "expiry" });
    expect(checkCard({ number: "4242424242424242", expiry: "11/2026", cvc: "12" }, now)).toMatchObject({ ok: false, field: "cvc" });
  });
});

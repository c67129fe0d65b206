// Wording of the engine's views (crates/client/src/views.rs) that the dashboard shows: the
// engine decides every figure and rule; these only put them into words.

import type { Lot } from "../generated/Lot";
import type { Charge } from "../generated/Charge";
import { credits } from "./money";

/** A lot's expiry: its exact time where the engine knows it, else why not. */
export function expiryText(lot: Lot, when: (at: string) => string): string {
  if (lot.expiry === "at" && lot.expires_at) return `expires ${when(lot.expires_at)}`;
  if (lot.expires_at) return when(lot.expires_at);
  if (lot.expiry === "never") return "never expires";
  return "expiry not reported by the server";
}

/** What each bucket paid for a charge: `daily 5.00 credits · subscription 2.00 credits`. */
export function breakdownText(c: Charge, locale?: string): string {
  return c.by_bucket.map((p) => `${p.bucket} ${credits(p.amount, locale)}`).join(" · ");
}

// Credits and money as integers: micro-credits and US cents. No floats touch an amount.

import { MICROS_PER_CREDIT } from "./money-units";
import { creditsNumber, dollarsIn } from "./locale";

export { MICROS_PER_CREDIT };

/** `1,234.50 credits`: two decimals, rounded down, grouped by the user's locale
 *  (product.md "Amounts shown to people"). */
export function credits(micros: number, locale?: string): string {
  return `${creditsNumber(micros, locale)} credits`;
}

/** `$20.00` in the user's locale. */
export function dollars(cents: number, locale?: string): string {
  return dollarsIn(cents, locale);
}

/** Parses a dollar amount as typed (`12`, `12.5`, `$12.50`) into cents, or null. */
export function parseDollars(raw: string): number | null {
  const m = /^\s*\$?\s*(\d{1,7})(?:\.(\d{1,2}))?\s*$/.exec(raw);
  if (!m) return null;
  return Number(m[1]) * 100 + Number((m[2] ?? "").padEnd(2, "0"));
}

export interface CustomPricing {
  credits_per_dollar: number;
  min_cents: number;
  max_cents: number;
}

export type CustomQuote = { ok: true; cents: number; micros: number } | { ok: false; problem: string };

/** What a custom amount buys, computed as the user types; or why it cannot be bought. */
export function quoteCustom(raw: string, pricing: CustomPricing): CustomQuote {
  if (raw.trim() === "") return { ok: false, problem: "Enter an amount in dollars." };
  const cents = parseDollars(raw);
  if (cents === null) return { ok: false, problem: "Enter dollars and cents, like 25 or 25.50." };
  if (cents < pricing.min_cents) return { ok: false, problem: `The smallest custom amount is ${dollars(pricing.min_cents)}.` };
  if (cents > pricing.max_cents) return { ok: false, problem: `The largest custom amount is ${dollars(pricing.max_cents)}.` };
  // cents × credits/dollar × 10^6 / 100, exact for the catalog's whole-number rate.
  const micros = (cents * pricing.credits_per_dollar * MICROS_PER_CREDIT) / 100;
  return { ok: true, cents, micros: Math.floor(micros) };
}

/** Credits as typed (`50`, `12.5`) into micro-credits, or null. */
export function parseCredits(raw: string): number | null {
  const m = /^\s*(\d{1,9})(?:\.(\d{1,6}))?\s*$/.exec(raw);
  if (!m) return null;
  return Number(m[1]) * MICROS_PER_CREDIT + Number((m[2] ?? "").padEnd(6, "0"));
}

/** The plain sentence that says what auto-refill will charge, and when. */
export function autoRefillSentence(thresholdMicros: number, packCredits: number, packCents: number, card: string, monthlyLimit: number): string {
  const times = monthlyLimit === 1 ? "once a month" : `${monthlyLimit} times a month`;
  return `When your balance falls below ${credits(thresholdMicros)}, creditbar buys ${credits(packCredits)} for ${dollars(packCents)} with ${card} — at most ${times}.`;
}

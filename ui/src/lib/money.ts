// Credits and money as integers: micro-credits and US cents, held as BigInt. The app sends
// every 64-bit integer as a decimal string (src-tauri/src/exact.rs), because a JavaScript
// number is exact only below 2^53 µcr (9 billion credits). No float touches an amount.

import { MICROS_PER_CREDIT, type Amount, exact } from "./money-units";
import { creditsNumber, dollarsIn } from "./locale";

export { MICROS_PER_CREDIT, type Amount, exact };

/** `487.25`: exact credits, trailing zeros dropped, no grouping (for form fields, which
 *  must read back as typed; not for display). */
export function creditsPlain(micros: Amount): string {
  const m = exact(micros);
  const abs = m < 0n ? -m : m;
  const whole = abs / MICROS_PER_CREDIT;
  const frac = abs % MICROS_PER_CREDIT;
  const fracText = frac === 0n ? "" : "." + frac.toString().padStart(6, "0").replace(/0+$/, "");
  return `${m < 0n ? "-" : ""}${whole}${fracText}`;
}

/** `1,234.50 credits`: two decimals, rounded down, grouped by the user's locale
 *  (product.md "Amounts shown to people"); exact at any size (BigInt, never a float). */
export function credits(micros: Amount, locale?: string): string {
  return `${creditsNumber(micros, locale)} credits`;
}

/** `$20.00` in the user's locale, exact at any size. */
export function dollars(cents: Amount, locale?: string): string {
  return dollarsIn(cents, locale);
}

/** Credits to the hundredth for a chart's bar height: a picture, not a figure anyone
 *  reads exactly (the exact figures are in the table). Integer division first. */
export function chartCredits(micros: Amount): number {
  return Number(exact(micros) / 10_000n) / 100;
}

/** Parses a dollar amount as typed (`12`, `12.5`, `$12.50`) into cents, or null. */
export function parseDollars(raw: string): bigint | null {
  const m = /^\s*\$?\s*(\d{1,7})(?:\.(\d{1,2}))?\s*$/.exec(raw);
  if (!m) return null;
  return BigInt(m[1]) * 100n + BigInt((m[2] ?? "").padEnd(2, "0"));
}

export interface CustomPricing {
  credits_per_dollar: Amount;
  min_cents: Amount;
  max_cents: Amount;
}

export type CustomQuote = { ok: true; cents: bigint; micros: bigint } | { ok: false; problem: string };

/** What a custom amount buys, computed as the user types; or why it cannot be bought. */
export function quoteCustom(raw: string, pricing: CustomPricing): CustomQuote {
  if (raw.trim() === "") return { ok: false, problem: "Enter an amount in dollars." };
  const cents = parseDollars(raw);
  if (cents === null) return { ok: false, problem: "Enter dollars and cents, like 25 or 25.50." };
  if (cents < exact(pricing.min_cents)) return { ok: false, problem: `The smallest custom amount is ${dollars(pricing.min_cents)}.` };
  if (cents > exact(pricing.max_cents)) return { ok: false, problem: `The largest custom amount is ${dollars(pricing.max_cents)}.` };
  // cents × credits/dollar × 10^6 / 100, exact for the catalog's whole-number rate.
  const micros = (cents * exact(pricing.credits_per_dollar) * MICROS_PER_CREDIT) / 100n;
  return { ok: true, cents, micros };
}

/** Credits as typed (`50`, `12.5`) into micro-credits, or null. */
export function parseCredits(raw: string): bigint | null {
  const m = /^\s*(\d{1,12})(?:\.(\d{1,6}))?\s*$/.exec(raw);
  if (!m) return null;
  return BigInt(m[1]) * MICROS_PER_CREDIT + BigInt((m[2] ?? "").padEnd(6, "0"));
}

/** The plain sentence that says what auto-refill will charge, and when. */
export function autoRefillSentence(thresholdMicros: Amount, packCredits: Amount, packCents: Amount, card: string, monthlyLimit: number): string {
  const times = monthlyLimit === 1 ? "once a month" : `${monthlyLimit} times a month`;
  return `When your balance falls below ${credits(thresholdMicros)}, creditbar buys ${credits(packCredits)} for ${dollars(packCents)} with ${card} — at most ${times}.`;
}

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

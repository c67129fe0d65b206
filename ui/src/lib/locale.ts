// Numbers, money and dates in the user's locale (navigator.language, which WebKitGTK takes
// from LANG/LC_ALL; lib/language.ts makes it a tag Intl accepts). The words stay English.
// Amounts follow product.md "Amounts shown to people": two decimals, rounded down (never
// show more than is there), grouped by the locale. 12- or 24-hour clocks are the locale's.

import { MICROS_PER_CREDIT } from "./money-units";

export function userLocale(): string {
  return typeof navigator !== "undefined" && navigator.language ? navigator.language : "en-US";
}

const cache = new Map<string, Intl.NumberFormat | Intl.DateTimeFormat>();
function cached<T extends Intl.NumberFormat | Intl.DateTimeFormat>(key: string, make: () => T): T {
  let f = cache.get(key);
  if (!f) {
    f = make();
    cache.set(key, f);
  }
  return f as T;
}

/** `1,234.50` (en-US), `1.234,50` (de-DE): micro-credits to two decimals, rounded down. */
export function creditsNumber(micros: number, locale = userLocale()): string {
  const hundredths = Math.floor(Math.abs(micros) / (MICROS_PER_CREDIT / 100));
  const value = hundredths === 0 ? 0 : (micros < 0 ? -hundredths : hundredths) / 100;
  const f = cached(`n2|${locale}`, () => new Intl.NumberFormat(locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 }));
  return (f as Intl.NumberFormat).format(value);
}

/** `$20.00` (en-US), `20,00 $` (de-DE): exact cents as US dollars. */
export function dollarsIn(cents: number, locale = userLocale()): string {
  const f = cached(`usd|${locale}`, () => new Intl.NumberFormat(locale, { style: "currency", currency: "USD" }));
  return (f as Intl.NumberFormat).format(cents / 100);
}

/** `Dec 1` (en-US), `1. Dez.` (de-DE), in `timeZone`. */
export function shortDateIn(at: Date, timeZone: string, locale = userLocale()): string {
  const f = cached(`d|${locale}|${timeZone}`, () => new Intl.DateTimeFormat(locale, { month: "short", day: "numeric", timeZone }));
  return (f as Intl.DateTimeFormat).format(at);
}

/** `3:00 PM` (en-US), `15:00` (en-GB, de-DE): the locale's own clock, in `timeZone`. */
export function timeIn(at: Date, timeZone: string, locale = userLocale()): string {
  const f = cached(`t|${locale}|${timeZone}`, () => new Intl.DateTimeFormat(locale, { hour: "numeric", minute: "2-digit", timeZone }));
  return (f as Intl.DateTimeFormat).format(at);
}

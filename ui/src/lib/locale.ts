// Numbers, money and dates in the user's locale (navigator.language, which WebKitGTK takes
// from LANG/LC_ALL; lib/language.ts makes it a tag Intl accepts). The words stay English.
// Amounts follow product.md "Amounts shown to people": two decimals, rounded down (never
// show more than is there), grouped by the locale. 12- or 24-hour clocks are the locale's.

import { MICROS_PER_CREDIT, type Amount, exact } from "./money-units";

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

/** `hundredths` (a BigInt count of hundredths) in `f`'s format: the whole part is formatted as a
 *  BigInt (exact at any size, grouped by the locale) and its two fraction digits are put in
 *  the fraction's place, in the locale's own digits. No float ever holds the amount.
 *  `f` shows exactly two fraction digits. */
function hundredthsIn(f: Intl.NumberFormat, digits: Intl.NumberFormat, hundredths: bigint): string {
  const negative = hundredths < 0n;
  const abs = negative ? -hundredths : hundredths;
  const whole = abs / 100n;
  // -0n is 0n: format -1 for the sign's place and put the whole part back.
  const parts = f.formatToParts(negative ? (whole === 0n ? -1n : -whole) : whole);
  const zero = digits.format(0n);
  return parts
    .map((p) => {
      if (p.type === "fraction") return digits.format(abs % 100n).padStart(2, zero);
      if (p.type === "integer" && whole === 0n) return zero;
      return p.value;
    })
    .join("");
}

/** `1,234.50` (en-US), `1.234,50` (de-DE): micro-credits to two decimals, rounded down
 *  (toward zero: never more than is there), exact at any size (BigInt). */
export function creditsNumber(micros: Amount, locale = userLocale()): string {
  const m = exact(micros);
  const hundredths = m / (MICROS_PER_CREDIT / 100n); // BigInt division truncates toward zero
  const f = cached(`n2|${locale}`, () => new Intl.NumberFormat(locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 }));
  return hundredthsIn(f as Intl.NumberFormat, digitsIn(locale), hundredths);
}

/** `$20.00` (en-US), `20,00 $` (de-DE): exact cents as US dollars. */
export function dollarsIn(cents: Amount, locale = userLocale()): string {
  const f = cached(`usd|${locale}`, () => new Intl.NumberFormat(locale, { style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 2 }));
  return hundredthsIn(f as Intl.NumberFormat, digitsIn(locale), exact(cents));
}

/** The locale's digits, ungrouped (for the two fraction digits). */
function digitsIn(locale: string): Intl.NumberFormat {
  return cached(`digits|${locale}`, () => new Intl.NumberFormat(locale, { useGrouping: false, maximumFractionDigits: 0 })) as Intl.NumberFormat;
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

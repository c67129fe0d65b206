// The burn-rate forecast. Worded so it is never taken for the reset time: it always says
// "run out in about N days" and names the reset separately, by date.

import type { UsageGroup } from "../generated/UsageGroup";
import { shortDateIn } from "./locale";
import { exact, type Amount } from "./money";

const DAY_MS = 86_400_000;

/** `Dec 1` (`1. Dez.` in German) in the account's timezone, in the user's locale. */
export function shortDate(at: Date, timeZone: string, locale?: string): string {
  return shortDateIn(at, timeZone, locale);
}

/**
 * The day (YYYY-MM-DD) `at` falls on in `timeZone`: usage days are keyed in the account's
 * timezone, so "today" must be too (UTC's date is another day for hours around midnight).
 */
export function localDay(at: Date, timeZone: string): string {
  const parts = new Intl.DateTimeFormat("en-US", { year: "numeric", month: "2-digit", day: "2-digit", timeZone }).formatToParts(at);
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? "";
  return `${get("year")}-${get("month")}-${get("day")}`;
}

/** The `n` calendar days ending with `today` (YYYY-MM-DD), oldest first. */
export function daysEndingOn(today: string, n: number): string[] {
  const end = Date.parse(today + "T00:00:00Z");
  return Array.from({ length: Math.max(0, n) }, (_, i) => new Date(end - (n - 1 - i) * DAY_MS).toISOString().slice(0, 10));
}

/** A day of usage: `charged` is µcr, a decimal string from the app (or a whole number). */
export type Day = Pick<UsageGroup, "key"> & { charged: Amount };

/** Average credits spent per day over the `window` calendar days ending today (µcr/day,
 *  rounded down: exact integers, no float). */
export function burnRate(days: Day[], today: string, window = 7): bigint {
  const first = daysEndingOn(today, window)[0] ?? today;
  const spent = days.filter((d) => d.key >= first && d.key <= today).reduce((sum, d) => sum + exact(d.charged), 0n);
  return spent / BigInt(Math.max(1, window));
}

function about(days: number): string {
  if (days < 1) {
    const hours = Math.max(1, Math.round(days * 24));
    return `about ${hours} hour${hours === 1 ? "" : "s"}`;
  }
  const n = Math.round(days);
  return `about ${n} day${n === 1 ? "" : "s"}`;
}

/**
 * The forecast sentence. `available` in µcr; `rate` in µcr per day; `nextReset` is when the
 * plan's credits renew (the daily reset for an account without one).
 */
export function forecastSentence(available: Amount, rate: Amount, now: Date, nextReset: Date | null, timeZone: string): string {
  const left = exact(available);
  const perDay = exact(rate);
  if (left <= 0n) {
    return nextReset ? `You are out of credits. More arrive with your reset on ${shortDate(nextReset, timeZone)}.` : "You are out of credits.";
  }
  if (perDay <= 0n) return "No usage in the last 7 days, so there is nothing to forecast.";
  // Integer minutes left (BigInt), then days as a duration: no amount is ever a float.
  const minutesLeft = (left * 1440n) / perDay;
  const daysLeft = Number(minutesLeft) / 1440;
  const runOut = new Date(now.getTime() + daysLeft * DAY_MS);
  if (!nextReset) return `At this pace you run out in ${about(daysLeft)}.`;
  const reset = shortDate(nextReset, timeZone);
  return runOut < nextReset
    ? `At this pace you run out in ${about(daysLeft)} — before your reset on ${reset}.`
    : `At this pace your credits last past your reset on ${reset}.`;
}

// The burn-rate forecast. Worded so it is never taken for the reset time: it always says
// "run out in about N days" and names the reset separately, by date.

import type { UsageGroup } from "../generated/UsageGroup";

const DAY_MS = 86_400_000;

/** `Dec 1` in the account's timezone. */
export function shortDate(at: Date, timeZone: string): string {
  return new Intl.DateTimeFormat("en-US", { month: "short", day: "numeric", timeZone }).format(at);
}

/** Average credits spent per day over the last `window` days of daily usage (µcr/day). */
export function burnRate(days: UsageGroup[], today: string, window = 7): number {
  const recent = days.filter((d) => d.key <= today).sort((a, b) => (a.key < b.key ? 1 : -1)).slice(0, window);
  if (recent.length === 0) return 0;
  const spent = recent.reduce((sum, d) => sum + d.charged, 0);
  return spent / window;
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
 * The forecast sentence. `available` in µcr; `rate` in µcr per day; `nextReset` is the next
 * time credits arrive on their own (the earlier of the daily and subscription resets that
 * bring more than nothing).
 */
export function forecastSentence(available: number, rate: number, now: Date, nextReset: Date | null, timeZone: string): string {
  if (available <= 0) {
    return nextReset ? `You are out of credits. More arrive with your reset on ${shortDate(nextReset, timeZone)}.` : "You are out of credits.";
  }
  if (rate <= 0) return "No usage in the last 7 days, so there is nothing to forecast.";
  const daysLeft = available / rate;
  const runOut = new Date(now.getTime() + daysLeft * DAY_MS);
  if (!nextReset) return `At this pace you run out in ${about(daysLeft)}.`;
  const reset = shortDate(nextReset, timeZone);
  return runOut < nextReset
    ? `At this pace you run out in ${about(daysLeft)} — before your reset on ${reset}.`
    : `At this pace your credits last past your reset on ${reset}.`;
}

// The forecast in words. The engine does the arithmetic (creditbar_client::views::forecast:
// the pace over the last week, integer minutes left, against the plan's renewal); this
// only words it, in the person's language, and names the reset by date so the run-out
// time is never taken for the reset time.

import type { Forecast } from "../generated/Forecast";
import type { About } from "../generated/About";
import { shortDateIn } from "./locale";

/** `Dec 1` (`1. Dez.` in German) in the account's timezone, in the user's locale. */
export function shortDate(at: Date, timeZone: string, locale?: string): string {
  return shortDateIn(at, timeZone, locale);
}

function about(left: About): string {
  return `about ${left.n} ${left.unit}${left.n === 1 ? "" : "s"}`;
}

/** The forecast sentence of the dashboard. */
export function forecastText(f: Forecast | null, timeZone: string, locale?: string): string {
  if (!f) return "";
  const date = (at: string) => shortDate(new Date(at), timeZone, locale);
  switch (f.kind) {
    case "out":
      return f.reset_at ? `You are out of credits. More arrive with your reset on ${date(f.reset_at)}.` : "You are out of credits.";
    case "no_usage":
      return "No usage in the last 7 days, so there is nothing to forecast.";
    case "runs_out":
      return f.reset_at
        ? `At this pace you run out in ${about(f.left)} — before your reset on ${date(f.reset_at)}.`
        : `At this pace you run out in ${about(f.left)}.`;
    case "lasts_past_reset":
      return `At this pace your credits last past your reset on ${date(f.reset_at)}.`;
  }
}

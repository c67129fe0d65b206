// Which purchases belong to the dashboard's period. The period is a number of calendar
// days ending today in the account's timezone (or all time), as for the usage above it, so
// the table and the chart answer the same question.

import type { Purchase } from "../generated/Purchase";
import { daysEndingOn, localDay } from "./forecast";

/**
 * The purchases made within the `days` calendar days ending `today` (YYYY-MM-DD in
 * `timeZone`); all of them when `days` is null. A purchase without a time yet is still in
 * flight and always shown: hiding it would hide money moving.
 */
export function purchasesInPeriod(purchases: Purchase[], days: number | null, today: string, timeZone: string): Purchase[] {
  if (days === null) return purchases;
  const first = daysEndingOn(today, days)[0] ?? today;
  return purchases.filter((p) => p.created_at === null || localDay(new Date(p.created_at), timeZone) >= first);
}

// Typed calls into the Rust commands. The types come from Rust (src/generated, ts-rs).
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type { Glance } from "../generated/Glance";
import type { IpcError } from "../generated/IpcError";
import type { DashboardView } from "../generated/DashboardView";
import type { CustomQuote } from "../generated/CustomQuote";
import type { PlanChoices } from "../generated/PlanChoices";
import type { PurchaseOptions } from "../generated/PurchaseOptions";
import type { PurchaseChoice } from "../generated/PurchaseChoice";
import type { PurchaseOutcome } from "../generated/PurchaseOutcome";
import type { SettingsData } from "../generated/SettingsData";
import type { SettingsView } from "../generated/SettingsView";
import type { AlertKind } from "../generated/AlertKind";
import type { AutoRefill } from "../generated/AutoRefill";
import type { CardSummary } from "../generated/CardSummary";
import type { ReviewRequest } from "../generated/ReviewRequest";
import type { ReviewView } from "../generated/ReviewView";

export function isIpcError(e: unknown): e is IpcError {
  return typeof e === "object" && e !== null && "code" in e && "message" in e;
}

/** A sentence for people from whatever a command threw. */
export function messageOf(e: unknown): string {
  if (isIpcError(e)) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}

export const ipc = {
  signIn: (server: string, token: string, allowInsecureHttp: boolean) =>
    invoke<Glance>("sign_in", { server, token, allowInsecureHttp }),
  glance: () => invoke<Glance>("glance"),
  syncNow: () => invoke<Glance>("sync_now"),
  /** Tells the app the window painted its data now (the open → first paint benchmark),
   *  on the page's wall clock, so this call's own latency is not counted. */
  painted: (marks?: string) =>
    invoke<void>("painted", {
      atMs: performance.timeOrigin + performance.now(),
      originMs: performance.timeOrigin,
      marks: marks ?? null,
    }),
  signOut: () => invoke<void>("sign_out"),
  dashboard: (groupBy: string, periodDays: number | null) => invoke<DashboardView>("dashboard", { groupBy, periodDays }),
  reportThread: (review: ReviewRequest) => invoke<string>("report_thread", { review }),
  reviews: () => invoke<ReviewView[]>("reviews"),
  purchaseOptions: () => invoke<PurchaseOptions>("purchase_options"),
  /** What a custom amount as typed buys, or why it cannot be bought (the engine's rule). */
  quoteCustom: (raw: string) => invoke<CustomQuote>("quote_custom", { raw }),
  planChoices: () => invoke<PlanChoices>("plan_choices"),
  changePlan: (plan: string) => invoke<PlanChoices>("change_plan", { plan }),
  setTimezone: (timezone: string) => invoke<SettingsView>("set_timezone", { timezone }),
  addCard: (number: string, expMonth: number, expYear: number, cvc: string) =>
    invoke<CardSummary>("add_card", { number, expMonth, expYear, cvc }),
  buy: (key: string, choice: PurchaseChoice) => invoke<PurchaseOutcome>("buy", { key, choice }),
  settings: () => invoke<SettingsData>("settings"),
  /** `low_threshold`: µcr as a decimal string; `kinds`: each notification kind's switch
   *  (the engine keeps only those away from their default). */
  saveAlerts: (alerts: { low_threshold: string; kinds: Partial<Record<AlertKind, boolean>>; open_purchase_at_low: boolean; expiry_lead_hours: number; also_below: string[]; number_in_icon?: boolean }) => invoke<void>("save_alerts", { alerts }),
  /** `threshold`: µcr as a decimal string (exact above 2^53). */
  saveAutoRefill: (enabled: boolean, threshold: string, pack: string, monthlyLimit: number) =>
    invoke<AutoRefill>("save_auto_refill", { enabled, threshold, pack, monthlyLimit }),
  setLaunchAtLogin: (on: boolean) => invoke<boolean>("set_launch_at_login", { on }),
  openLogs: () => invoke<void>("open_logs"),
  openWindow: (which: "dashboard" | "purchase" | "settings") => invoke<void>("open_window", { which }),
};

/** Calls `f` with every new glance the app computes (live sync, countdowns). */
export function onGlance(f: (g: Glance) => void): Promise<UnlistenFn> {
  return listen<Glance>("glance", (e) => f(e.payload));
}

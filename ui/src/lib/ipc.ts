// Typed calls into the Rust commands. The types come from Rust (src/generated, ts-rs).
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type { Glance } from "../generated/Glance";
import type { IpcError } from "../generated/IpcError";

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
  signIn: (server: string, token: string) => invoke<Glance>("sign_in", { server, token }),
  glance: () => invoke<Glance>("glance"),
  syncNow: () => invoke<Glance>("sync_now"),
  signOut: () => invoke<void>("sign_out"),
};

/** Calls `f` with every new glance the app computes (live sync, countdowns). */
export function onGlance(f: (g: Glance) => void): Promise<UnlistenFn> {
  return listen<Glance>("glance", (e) => f(e.payload));
}

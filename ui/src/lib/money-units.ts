// Amounts as integers: micro-credits and US cents, held as BigInt. The app sends every
// 64-bit integer as a decimal string (src-tauri/src/exact.rs), because a JavaScript number
// is exact only below 2^53 µcr (9 billion credits). No float holds an amount.

/** Micro-credits in one credit. */
export const MICROS_PER_CREDIT = 1_000_000n;

/** An amount as it arrives (a decimal string from the app) or as code writes it. */
export type Amount = bigint | string | number;

/** The amount as a BigInt. A number must be a whole number (small literals in code). */
export function exact(v: Amount): bigint {
  return typeof v === "bigint" ? v : BigInt(v);
}

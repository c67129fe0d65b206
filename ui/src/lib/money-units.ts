/** Micro-credits in one credit (amounts are integers of micro-credits; no float holds one). */
export const MICROS_PER_CREDIT = 1_000_000;

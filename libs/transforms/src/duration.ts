/** Durations are integers of milliseconds; in definitions they are written `<int><ms|s|m|h|d>`. */
export type DurationText = `${number}${"ms" | "s" | "m" | "h" | "d"}`;

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(\d+)(ms|s|m|h|d)$/;

/** "90m" → 5_400_000; undefined when the text is not a duration (the validator words the error). */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text.trim());
  if (!match) return undefined;
  const ms = Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
  return Number.isSafeInteger(ms) && ms > 0 ? ms : undefined;
}

/** The shortest exact text for a duration: 3_600_000 → "1h", 90_000 → "90s". */
export function formatDuration(ms: number): string {
  for (const unit of ["d", "h", "m", "s"] as const) {
    if (ms % UNIT_MS[unit] === 0) return `${ms / UNIT_MS[unit]}${unit}`;
  }
  return `${ms}ms`;
}

/**
 * The hop used when a feature names none (Chronon's rule): windows under 12 hours hop every 5 minutes,
 * under 12 days every hour, longer ones every day. A hop never exceeds its window.
 */
export function defaultHop(windowMs: number): number {
  const hop = windowMs < 12 * UNIT_MS.h ? 5 * UNIT_MS.m : windowMs < 12 * UNIT_MS.d ? UNIT_MS.h : UNIT_MS.d;
  return Math.min(hop, windowMs);
}

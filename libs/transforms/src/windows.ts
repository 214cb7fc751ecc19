/** Tile and window arithmetic (DESIGN.md, normative). All times are epoch ms. */

/** Start of the tile holding `ts`: tile k covers k·hop ≤ ts < (k+1)·hop. */
export function tileStart(ts: number, hopMs: number): number {
  return Math.floor(ts / hopMs) * hopMs;
}

/** First instant of the window whose value is read at `t`: floor((t − W) / H) · H. Events at ≥ t are out. */
export function windowStart(t: number, windowMs: number, hopMs: number): number {
  return Math.floor((t - windowMs) / hopMs) * hopMs;
}

/** An event is late when older than the view's retention (largest window plus its hop) at processing time `now`. */
export function isLate(ts: number, now: number, retentionMs: number): boolean {
  return ts < now - retentionMs;
}

/** A tile can be dropped once it ends before the retention horizon: no value at t ≥ now can read it. */
export function isExpired(tileStartMs: number, hopMs: number, now: number, retentionMs: number): boolean {
  return tileStartMs + hopMs <= now - retentionMs;
}

/** Default allowed clock skew for events stamped in the future: 5 minutes. */
export const DEFAULT_MAX_SKEW_MS = 5 * 60_000;

// A naive reference for the window semantics of DESIGN.md, written plainly: scan every event per query.
import type { FeatureValue } from "../src/index.js";

export interface RefEvent {
  entity: string;
  ts: number;
  seq: number;
  value: unknown;
}

export interface RefFeature {
  name: string;
  op: string;
  column?: string;
  windowMs: number;
  hopMs: number;
  k?: number;
  quantile?: number;
}

const numeric = (v: unknown): number | null => {
  const n = typeof v === "number" ? v : typeof v === "string" && v.trim() !== "" ? Number(v) : NaN;
  return Number.isFinite(n) ? n + 0 : null;
};

/** The exact (non-sketch) answer; for approx ops the exact value the sketch approximates. */
export function reference(events: RefEvent[], entity: string, f: RefFeature, t: number): FeatureValue {
  const start = Math.floor((t - f.windowMs) / f.hopMs) * f.hopMs;
  const inWindow = events.filter((e) => e.entity === entity && e.ts >= start && e.ts < t);
  if (f.op === "count" && f.column === undefined) return inWindow.length;
  const isNumeric = ["sum", "mean", "min", "max", "variance", "stddev", "approx_quantile"].includes(f.op);
  const rows = inWindow
    .map((e) => ({ ...e, value: isNumeric ? numeric(e.value) : e.value }))
    .filter((e) => e.value !== null && e.value !== undefined);
  const xs = rows.map((e) => e.value as number);
  const n = rows.length;
  switch (f.op) {
    case "count":
      return n;
    case "sum":
      return xs.reduce((a, b) => a + b, 0);
    case "mean":
      return n === 0 ? null : xs.reduce((a, b) => a + b, 0) / n;
    case "min":
      return n === 0 ? null : Math.min(...xs);
    case "max":
      return n === 0 ? null : Math.max(...xs);
    case "variance":
    case "stddev": {
      if (n === 0) return null;
      const mean = xs.reduce((a, b) => a + b, 0) / n;
      const v = xs.reduce((a, x) => a + (x - mean) ** 2, 0) / n;
      return f.op === "variance" ? v : Math.sqrt(v);
    }
    case "first":
    case "last":
    case "last_k": {
      // Later in time wins; on equal time, later in the log wins.
      const newestFirst = [...rows].sort((a, b) => b.ts - a.ts || b.seq - a.seq);
      if (n === 0) return null;
      if (f.op === "last") return newestFirst[0]!.value as FeatureValue;
      if (f.op === "last_k") return newestFirst.slice(0, f.k).map((e) => e.value);
      const oldest = Math.min(...rows.map((e) => e.ts));
      return newestFirst.filter((e) => e.ts === oldest)[0]!.value as FeatureValue;
    }
    case "approx_distinct":
      return n === 0 ? null : new Set(rows.map((e) => String(e.value))).size;
    case "approx_quantile": {
      if (n === 0) return null;
      const sorted = [...xs].sort((a, b) => a - b);
      return sorted[Math.floor(f.quantile! * (n - 1))]!;
    }
    case "top_k": {
      if (n === 0) return null;
      const key = (v: unknown) => (typeof v === "string" ? `s${v}` : `j${JSON.stringify(v)}`);
      const counts = new Map<string, { value: unknown; n: number }>();
      for (const e of rows) {
        const held = counts.get(key(e.value)) ?? { value: e.value, n: 0 };
        held.n++;
        counts.set(key(e.value), held);
      }
      return [...counts]
        .sort((a, b) => b[1].n - a[1].n || (a[0] < b[0] ? -1 : 1))
        .slice(0, f.k)
        .map(([, held]) => held.value);
    }
    default:
      throw new Error(`no reference for ${f.op}`);
  }
}

/** Does an evaluator's value match the reference, within the op's stated bound? */
export function matchesReference(op: string, got: FeatureValue, want: FeatureValue): boolean {
  if (want === null || got === null) return got === want;
  if (op === "variance" || op === "stddev") {
    return Math.abs((got as number) - (want as number)) <= 1e-9 * Math.max(1, Math.abs(want as number));
  }
  if (op === "approx_distinct") {
    return Math.abs((got as number) - (want as number)) <= Math.max(1, 0.05 * (want as number));
  }
  if (op === "approx_quantile") {
    return Math.abs((got as number) - (want as number)) <= 0.01 * Math.abs(want as number) + 1e-12;
  }
  return Array.isArray(want) ? JSON.stringify(got) === JSON.stringify(want) : Object.is(got, want);
}

import { type FeatureValue, inputKind } from "./aggregators/index.js";
import type { Feature, Row, View } from "./definitions/types.js";
import { type ViewLayout, viewLayout } from "./tile-state.js";
import { parseTimestamp } from "./time.js";

/** An event reduced to what the aggregators need: entity key, event time, log position, one input per feature. */
export interface PreparedEvent {
  ok: true;
  entity: string;
  ts: number;
  seq: number;
  /** Per feature, in view order: the input value, or null to skip (null input, or non-numeric for numeric ops). */
  inputs: unknown[];
}

export type Prepared =
  | PreparedEvent
  /** `column` names the offending column when one is to blame (entity key, event time). */
  | { ok: false; filtered: boolean; reason: string; column?: string };

/** A view compiled for evaluation: how to read each feature's input, and the layout of its tile state. */
export interface ViewRuntime {
  view: View;
  layout: ViewLayout;
  /**
   * Per feature, the first feature reading the same column the same way (sum, mean, min… of
   * `amount`): its input is that feature's, read once per event.
   */
  sharedInput: readonly number[];
  /**
   * Row → event. Pass `into` to reuse one event object (and its inputs array) for a scan that copies
   * what it needs before the next call: no allocation per event.
   */
  prepare(row: Row, seq: number, into?: PreparedEvent): Prepared;
}

/** Numbers (and numeric text) pass; anything else is treated as a missing value. -0 becomes 0. */
function toNumber(value: unknown): number | null {
  const n =
    typeof value === "number"
      ? value
      : typeof value === "string" && value.trim() !== ""
        ? Number(value)
        : NaN;
  return Number.isFinite(n) ? n + 0 : null;
}

function readInput(feature: Feature): (row: Row) => unknown {
  const kind = inputKind(feature.op, feature.column);
  const column = feature.column!;
  if (kind === "event") return () => true;
  if (kind === "number") return (row) => toNumber(row[column]);
  return (row) => row[column] ?? null;
}

export function viewRuntime(view: View): ViewRuntime {
  const readers = view.features.map(readInput);
  // One read per shared input, not one per feature (each a heap number for a fraction).
  const firstReader = new Map<string, number>();
  const sharedInput = view.features.map((f, i) => {
    const key = `${inputKind(f.op, f.column)}\0${f.column}`;
    if (!firstReader.has(key)) firstReader.set(key, i);
    return firstReader.get(key)!;
  });
  const { entity: entityKey, timestamp: tsKey } = view.source;
  const transforms = view.derive.length > 0 || view.filter !== undefined;

  const prepare = (input: Row, seq: number, into?: PreparedEvent): Prepared => {
    let row = input;
    if (transforms) {
      try {
        row = { ...input };
        for (const d of view.derive) row[d.name] = d.run(row);
        if (view.filter) {
          const keep = view.filter.run(row);
          if (typeof keep !== "boolean")
            return { ok: false, filtered: false, reason: "filter did not return a boolean" };
          if (!keep) return { ok: false, filtered: true, reason: "filtered out" };
        }
      } catch (error) {
        return { ok: false, filtered: false, reason: (error as Error).message };
      }
    }
    const key = row[entityKey];
    if (key === null || key === undefined || key === "") {
      return { ok: false, filtered: false, reason: `missing entity key "${entityKey}"`, column: entityKey };
    }
    const ts = parseTimestamp(row[tsKey]);
    if (ts === undefined) {
      return {
        ok: false,
        filtered: false,
        reason: `bad timestamp ${JSON.stringify(row[tsKey] ?? null)} (epoch ms or ISO-8601)`,
        column: tsKey,
      };
    }
    const inputs = into ? into.inputs : new Array(readers.length);
    for (let f = 0; f < readers.length; f++) {
      const same = sharedInput[f]!;
      inputs[f] = same === f ? readers[f]!(row) : inputs[same];
    }
    if (!into) return { ok: true, entity: String(key), ts, seq, inputs };
    into.entity = String(key);
    into.ts = ts;
    into.seq = seq;
    return into;
  };
  return { view, layout: viewLayout(view), sharedInput, prepare };
}

/** Finalised values of one entity at one time, keyed by feature name. */
export type FeatureVector = Record<string, FeatureValue>;

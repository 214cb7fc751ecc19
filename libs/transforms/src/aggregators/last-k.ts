import { ByteReader, type ByteWriter } from "../bytes.js";
import type { Aggregator } from "./aggregator.js";

/** An event's value with its place in time: ts first, then log position (later in the log wins ties). */
export interface Stamped {
  ts: number;
  seq: number;
  value: unknown;
}

function isAfter(a: Stamped, ts: number, seq: number): boolean {
  return ts > a.ts || (ts === a.ts && seq > a.seq);
}

function writeStamped(out: ByteWriter, s: Stamped): ByteWriter {
  return out.f64(s.ts).f64(s.seq).value(s.value);
}

function readStamped(input: ByteReader): Stamped {
  return { ts: input.f64(), seq: input.f64(), value: input.value() };
}

/** The k most recent values, newest first (same order as `last`: ts, then log position). */
export function lastK(k: number): Aggregator<Stamped[]> {
  const offer = (list: Stamped[], value: unknown, ts: number, seq: number): Stamped[] => {
    let i = list.length;
    while (i > 0 && isAfter(list[i - 1]!, ts, seq)) i--;
    if (i >= k) return list;
    list.splice(i, 0, { ts, seq, value });
    if (list.length > k) list.pop();
    return list;
  };
  return {
    init: () => [],
    add: offer,
    merge: (into, from) => {
      for (const s of from) offer(into, s.value, s.ts, s.seq);
      return into;
    },
    finalize: (list) => (list.length === 0 ? null : list.map((s) => s.value)),
    serialize: (list, out) => {
      out.varuint(list.length);
      for (const s of list) writeStamped(out, s);
    },
    deserialize: (bytes) => {
      const input = new ByteReader(bytes);
      const length = input.varuint();
      return Array.from({ length }, () => readStamped(input));
    },
  };
}

import { readFileSync } from "node:fs";
import { type View, ViewState } from "@tessera/transforms";
import { repoRoot } from "../support/index.js";

/** The benchmark's view: 10 windowed features over one source, two hops (5 min and 1 h). */
export const BENCH_DEFINITIONS = `
sources: [{ name: tx, topic: payments.transactions, entity: card_id, timestamp: ts }]
views:
  - name: card
    source: tx
    features:
      - { name: n_10m, op: count, window: 10m, hop: 5m }
      - { name: n_1h, op: count, window: 1h, hop: 5m }
      - { name: sum_1h, op: sum, column: amount, window: 1h, hop: 5m }
      - { name: max_1h, op: max, column: amount, window: 1h, hop: 5m }
      - { name: mean_1h, op: mean, column: amount, window: 1h, hop: 5m }
      - { name: n_1d, op: count, window: 1d, hop: 1h }
      - { name: sum_1d, op: sum, column: amount, window: 1d, hop: 1h }
      - { name: mean_1d, op: mean, column: amount, window: 1d, hop: 1h }
      - { name: std_1d, op: stddev, column: amount, window: 1d, hop: 1h }
      - { name: min_1d, op: min, column: amount, window: 1d, hop: 1h }
`;

/** The definitions of a bench run: `bench` (above) or `example` (examples/payments, the view users start from). */
export function definitionsOf(view: string): string {
  if (view === "bench") return BENCH_DEFINITIONS;
  if (view === "example") return readFileSync(`${repoRoot}/examples/payments/features.yaml`, "utf8");
  throw new Error(`--view ${view}: bench or example`);
}

export const KEY = "bench-key-0123456789abcdef0123456789abcdef";

/** The floor's key: one packed vector of float64 per entity (what the least any server could read). */
export const floorKey = (prefix: string, entity: string) => `${prefix}floor:{${entity}}`;
/** Features in the floor's vector (the bench view's count). */
export const FLOOR_FEATURES = 10;

/**
 * The bench's entity states: `eventsPerEntity` payments per card, stamped uniformly over the last
 * `spreadMinutes` before `now`, applied with libs/transforms. Returns the view state (take its dirty
 * entities to write them) and the last log offset used.
 */
export function benchState(
  view: View,
  flags: { entities: number; eventsPerEntity: number; spreadMinutes: number },
  now: number,
): { state: ViewState; lastOffset: number } {
  const state = new ViewState(view);
  const countries = ["FR", "DE", "US", "GB", "ES"];
  let offset = 0;
  for (let e = 0; e < flags.entities; e++) {
    for (let i = 0; i < flags.eventsPerEntity; i++) {
      const ts = now - 1 - Math.floor(Math.random() * flags.spreadMinutes * 60_000);
      const row = {
        card_id: `card-${e}`,
        ts,
        event_time: ts,
        amount: Math.round(Math.random() * 50_000) / 100,
        merchant_id: `m-${Math.floor(Math.random() * 200)}`,
        country: countries[Math.floor(Math.random() * countries.length)],
      };
      state.apply(row, { offset: offset++, now });
    }
  }
  return { state, lastOffset: offset - 1 };
}

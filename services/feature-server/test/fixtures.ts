/**
 * Test fixtures: definitions, a deterministic event stream, tiles computed from it by libs/transforms'
 * incremental evaluator and written through the online store (as the stream processor does), and
 * the batch evaluator's values as the oracle.
 */
import { seededUniform } from "@tessera/stats";
import type { OnlineStore, StateWrite } from "@tessera/stores";
import {
  type Definitions,
  type FeatureValue,
  type PreparedEvent,
  parseDefinitionsYaml,
  pointInTime,
  ViewState,
} from "@tessera/transforms";
import { type ApiKeyEntry, hashKey } from "../src/index.js";

export const DEFINITIONS_YAML = `
sources:
  - { name: tx, topic: payments.transactions, entity: card_id, timestamp: ts }
  - { name: tx_by_merchant, topic: payments.transactions, entity: merchant_id, timestamp: ts }
views:
  - name: card
    source: tx
    features:
      - { name: n_1h, op: count, window: 1h, hop: 5m }
      - { name: amount_sum_1h, op: sum, column: amount, window: 1h, hop: 5m }
      - { name: amount_mean_6h, op: mean, column: amount, window: 6h, hop: 30m }
      - { name: amount_std_6h, op: stddev, column: amount, window: 6h, hop: 30m }
      - { name: amount_max_1d, op: max, column: amount, window: 1d, hop: 1h }
      - { name: amount_min_1d, op: min, column: amount, window: 1d, hop: 1h }
      - { name: last_country, op: last, column: country, window: 1d, hop: 1h }
      - { name: first_country, op: first, column: country, window: 1d, hop: 1h }
      - { name: countries_1d, op: approx_distinct, column: country, window: 1d, hop: 1h }
      - { name: last_amounts, op: last_k, column: amount, k: 3, window: 6h, hop: 30m }
    onDemand:
      - { name: amount_vs_mean, expr: "amount_mean_6h != null && amount_mean_6h > 0.0 ? context.amount / amount_mean_6h : 0.0" }
  - name: merchant
    source: tx_by_merchant
    features:
      - { name: n_1h, op: count, window: 1h, hop: 5m }
      - { name: amount_sum_1d, op: sum, column: amount, window: 1d, hop: 1h }
`;

export const definitions = (): Definitions => parseDefinitionsYaml(DEFINITIONS_YAML);

export interface Event {
  card_id: string;
  merchant_id: string;
  ts: number;
  amount: number | null;
  country: string;
}

/** `count` events over the last `spanMs` before `now`, on `cards` cards and 5 merchants. */
export function events(
  now: number,
  count: number,
  cards: number,
  spanMs = 20 * 3_600_000,
  seed = 7,
): Event[] {
  const rnd = seededUniform(seed); // seeded, so failures reproduce
  const countries = ["US", "FR", "DE", "BR", "JP"];
  return Array.from({ length: count }, () => ({
    card_id: `card-${Math.floor(rnd() * cards)}`,
    merchant_id: `m-${Math.floor(rnd() * 5)}`,
    ts: now - 1 - Math.floor(rnd() * spanMs),
    amount: rnd() < 0.05 ? null : Math.round(rnd() * 50_000) / 100,
    country: countries[Math.floor(rnd() * countries.length)]!,
  }));
}

/** Applies the events with the incremental evaluator at processing time `now` and writes their states. */
export async function writeTiles(
  store: OnlineStore,
  defs: Definitions,
  rows: Event[],
  now: number,
): Promise<void> {
  for (const view of defs.views) {
    await store.applyView({ name: view.name, version: view.version, retentionMs: view.retentionMs });
    const state = new ViewState(view);
    rows.forEach((row, offset) => {
      const result = state.apply(row as unknown as Record<string, unknown>, { offset, now });
      if (result.status !== "applied")
        throw new Error(`fixture event not applied: ${JSON.stringify(result)}`);
    });
    const states: StateWrite[] = state.takeDirty().map((e) => ({
      view: view.name,
      version: view.version,
      entity: e.entity,
      state: e.state,
      expiresAt: e.expiresAt,
    }));
    const group = `fixtures-${view.name}`;
    const claim = await store.claimPartition(group, view.source.topic, 0);
    await store.writeBatch({
      owner: { consumerGroup: group, topic: view.source.topic, partition: 0, epoch: claim.epoch },
      expectedOffset: claim.offset,
      offset: Math.max(claim.offset, rows.length - 1),
      states,
    });
  }
}

/** The batch (point-in-time) evaluator's values for one entity at `t`, by feature name. */
export function oracle(
  defs: Definitions,
  viewName: string,
  rows: Event[],
  entity: string,
  t: number,
): Record<string, FeatureValue> {
  const view = defs.views.find((v) => v.name === viewName)!;
  const state = new ViewState(view);
  const prepared = rows.flatMap((row, offset) => {
    // (Prepared is the event itself, or wraps it in `event`, depending on the transforms version.)
    const p = state.runtime.prepare(row as unknown as Record<string, unknown>, offset) as unknown as {
      ok: boolean;
      event?: PreparedEvent;
    } & PreparedEvent;
    const event = p.event ?? p;
    return p.ok && event.entity === entity ? [event] : [];
  });
  const [values] = pointInTime(state.runtime, prepared, [t]);
  return Object.fromEntries(view.features.map((f, i) => [f.name, values![i]!]));
}

export const KEYS = {
  all: "tk_all_0123456789abcdef0123456789abcdef",
  cardOnly: "tk_card_0123456789abcdef0123456789abcd",
  slow: "tk_slow_0123456789abcdef0123456789abcd",
};

export const apiKeys = (): ApiKeyEntry[] => [
  { id: "all", sha256: hashKey(KEYS.all), views: ["*"], ratePerSecond: 100_000, burst: 100_000 },
  {
    id: "card-only",
    sha256: hashKey(KEYS.cardOnly),
    views: ["card"],
    ratePerSecond: 100_000,
    burst: 100_000,
  },
  { id: "slow", sha256: hashKey(KEYS.slow), views: ["*"], ratePerSecond: 1, burst: 3 },
];

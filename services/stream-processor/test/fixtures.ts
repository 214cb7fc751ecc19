/** Shared by the processor's integration tests: definitions, events, the batch oracle, store reads. */
import { readFileSync } from "node:fs";
import {
  type PaymentTransactionRecord,
  parseAvroSchema,
  type SchemaRegistry,
  valueSubject,
} from "@tessera/kafka";
import type { OnlineStore } from "@tessera/stores";
import {
  type FeatureVector,
  finalizeAt,
  type PreparedEvent,
  parseDefinitionsYaml,
  pointInTime,
  type View,
  viewRuntime,
} from "@tessera/transforms";

export const paymentSchema = JSON.parse(
  readFileSync(new URL("../../../schemas/avro/payment_transaction.avsc", import.meta.url), "utf8"),
);

/** One event of schemas/avro/payment_transaction.avsc. */
export type Payment = PaymentTransactionRecord;

/** Confluent framing: magic byte 0, the schema id (big-endian int32), then the Avro body. */
export function frame(id: number, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeInt32BE(id, 1);
  return Buffer.concat([header, body]);
}

/** Registers the payment schema for `topic`; `encode` writes a payment as a producer would, `decode` reads one back. */
export async function paymentCodec(
  registry: SchemaRegistry,
  topic: string,
): Promise<{ id: number; encode: (p: Payment) => Buffer; decode: (value: Buffer) => Payment }> {
  const id = await registry.register(valueSubject(topic), paymentSchema);
  const type = parseAvroSchema(paymentSchema);
  return {
    id,
    encode: (p) => frame(id, type.toBuffer(p)),
    decode: (value) => type.fromBuffer(value.subarray(5)) as Payment,
  };
}

/** Definitions over `topic`, one view named `view`: most ops, two hops, a CEL derive. */
export function definitionsYaml(topic: string, view: string): string {
  return `
sources:
  - { name: tx, topic: ${topic}, entity: card_id, timestamp: event_time }
views:
  - name: ${view}
    source: tx
    derive:
      - { name: amount_x2, expr: "amount * 2.0" }
    features:
      - { name: n_1h, op: count, window: 1h, hop: 5m }
      - { name: n_10m, op: count, window: 10m, hop: 1m }
      - { name: sum_1h, op: sum, column: amount, window: 1h, hop: 5m }
      - { name: sum_x2_1h, op: sum, column: amount_x2, window: 1h, hop: 5m }
      - { name: mean_1h, op: mean, column: amount, window: 1h, hop: 5m }
      - { name: min_10m, op: min, column: amount, window: 10m, hop: 1m }
      - { name: max_1h, op: max, column: amount, window: 1h, hop: 5m }
      - { name: last_country, op: last, column: country, window: 1h, hop: 5m }
      - { name: merchants_1h, op: approx_distinct, column: merchant_id, window: 1h, hop: 5m }
`;
}

export function viewOf(yaml: string): View {
  return parseDefinitionsYaml(yaml).views[0]!;
}

const countries = ["FR", "DE", "US", "GB", "ES"];

/** Deterministic pseudo-random payments (integer amounts, so sums are exact in any order). */
export function payments(
  count: number,
  options: { entities: number; seed: number; endMs: number; spanMs: number },
) {
  let state = options.seed >>> 0 || 1;
  const rand = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  const out: Payment[] = [];
  for (let i = 0; i < count; i++) {
    out.push({
      transaction_id: `tx-${options.seed}-${i}`,
      card_id: `card-${Math.floor(rand() * options.entities)}`,
      merchant_id: `m-${Math.floor(rand() * 50)}`,
      amount: 1 + Math.floor(rand() * 5000),
      currency: "EUR",
      country: countries[Math.floor(rand() * countries.length)]!,
      event_time: options.endMs - Math.floor(rand() * options.spanMs),
    });
  }
  return out;
}

/**
 * The batch evaluator's values at t for every entity. `seq` is each event's position in the log of
 * its entity's partition (what the processor uses, as the Kafka offset, to break time ties).
 */
export function batchValues(
  view: View,
  events: { row: Payment; seq: number }[],
  t: number,
): Map<string, FeatureVector> {
  const runtime = viewRuntime(view);
  const byEntity = new Map<string, PreparedEvent[]>();
  for (const { row, seq } of events) {
    const prepared = runtime.prepare(row as unknown as Record<string, unknown>, seq);
    if (!prepared.ok) throw new Error(`fixture event refused: ${prepared.reason}`);
    const list = byEntity.get(prepared.entity) ?? [];
    list.push(prepared);
    byEntity.set(prepared.entity, list);
  }
  const out = new Map<string, FeatureVector>();
  for (const [entity, list] of byEntity) {
    const [values] = pointInTime(runtime, list, [t]);
    out.set(entity, Object.fromEntries(view.features.map((f, i) => [f.name, values![i]!])));
  }
  return out;
}

/** What the feature server does: read the stored states and finalise them at t. */
export async function onlineValues(
  store: OnlineStore,
  view: View,
  entities: string[],
  t: number,
): Promise<Map<string, FeatureVector>> {
  await store.applyView({ name: view.name, version: view.version, retentionMs: view.retentionMs });
  const runtime = viewRuntime(view);
  const out = new Map<string, FeatureVector>();
  for (let i = 0; i < entities.length; i += 500) {
    const chunk = entities.slice(i, i + 500);
    const states = await store.readStates(view.name, view.version, chunk);
    chunk.forEach((entity, j) => {
      const state = states[j];
      if (state) out.set(entity, finalizeAt(runtime, state, t));
    });
  }
  return out;
}

/** Entities whose online values differ from the batch ones, with both (empty when equal). */
export function differences(online: Map<string, FeatureVector>, batch: Map<string, FeatureVector>) {
  const canonical = (v: FeatureVector | undefined) =>
    v === undefined
      ? "none"
      : JSON.stringify(
          Object.keys(v)
            .sort()
            .map((k) => [k, v[k]]),
        );
  const diffs: { entity: string; online: FeatureVector | undefined; batch: FeatureVector }[] = [];
  for (const [entity, expected] of batch) {
    const got = online.get(entity);
    if (canonical(got) !== canonical(expected)) diffs.push({ entity, online: got, batch: expected });
  }
  return diffs;
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

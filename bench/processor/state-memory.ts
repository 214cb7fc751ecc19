/**
 * What the processor's in-memory state of the example view holds per entity, and what a full GC of
 * it costs: the events of bench/processor (20 per card, stamped across the last 30 minutes, so
 * about 60 one-minute tiles each) applied to one ViewState, no Kafka or store. Deterministic, so a
 * change to the state's layout shows here when the end-to-end bench's noise hides it.
 *
 *   node --expose-gc --conditions=@tessera/source --import tsx bench/processor/state-memory.ts [--entities 50000] [--events 1000000]
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseDefinitionsYaml, ViewState } from "@tessera/transforms";
import { numericFlags } from "../support/index.js";

const flags = numericFlags({ entities: 50_000, events: 1_000_000 });
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with node --expose-gc (see the command at the top of this file)");

const text = readFileSync(join(import.meta.dirname, "../../examples/payments/features.yaml"), "utf8");
const view = parseDefinitionsYaml(text).views.find((v) => v.name === "card_activity")!;
const state = new ViewState(view);
const countries = ["US", "FR", "DE", "BR", "JP"];
const now = Date.now();

gc();
const before = process.memoryUsage();
for (let j = 0; j < flags.events; j++) {
  const row = {
    card_id: `card-${(j * 7919) % flags.entities}`,
    merchant_id: `m-${j % 997}`,
    amount: (j % 500) + 0.25,
    // A fresh string per event, as a decoder makes them.
    country: `${countries[j % 5]}`.slice(0),
    event_time: now - 1 - ((j * 2_654_435_761) % (30 * 60_000)),
  };
  state.apply(row, { offset: j, now });
}
gc();
const after = process.memoryUsage();
const started = performance.now();
gc();
const fullGcMs = performance.now() - started;

const perEntity = (bytes: number) => `${Math.round(bytes / state.size).toLocaleString("en-US")} B/entity`;
const heap = after.heapUsed - before.heapUsed;
const buffers = after.arrayBuffers - before.arrayBuffers;
console.log(
  `${state.size.toLocaleString("en-US")} entities, ${flags.events.toLocaleString("en-US")} events: ` +
    `JS heap ${(heap / 1e6).toFixed(1)} MB (${perEntity(heap)}), array buffers ${(buffers / 1e6).toFixed(1)} MB ` +
    `(${perEntity(buffers)}), full GC ${fullGcMs.toFixed(0)} ms`,
);

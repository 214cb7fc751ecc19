/**
 * What the feature server does per entity once the store has answered, alone and deterministic:
 * load each stored state and finalise every feature of the view at one `asOf` (TileReader +
 * finalizeStored, as serve.ts does), plus the view's on-demand features with and without the
 * request context they read. No network, no Fastify: the CPU the end-to-end bench cannot separate.
 * "finalise" reads the window vector each value carries (asOf is within the window boundaries of
 * its encoding); "finalise, tiles only" the same values with the vector removed (a read after the
 * next window boundary), which merges tiles.
 *
 *   npx tsx bench/feature-server/finalise.ts [--view bench|example] [--entities 5000]
 *     [--eventsPerEntity 20] [--spreadMinutes 30] [--runs 3] [--rounds 20]
 */
import {
  type FeatureValue,
  finalizeStored,
  parseDefinitionsYaml,
  TileReader,
  viewRuntime,
} from "@tessera/transforms";
import { median, numericFlags } from "../support/index.js";
import { benchState, definitionsOf } from "./shared.js";

const flags = numericFlags({ entities: 5000, eventsPerEntity: 20, spreadMinutes: 30, runs: 3, rounds: 20 });
const viewArg = process.argv.indexOf("--view");
const VIEW = viewArg >= 0 ? process.argv[viewArg + 1]! : "example";
const view = parseDefinitionsYaml(definitionsOf(VIEW)).views[0]!;
const now = Date.now();
const { state, lastOffset } = benchState(view, flags, now);
const states = state.takeDirty({ partition: 0, offset: lastOffset }).map((d) => d.state);
// The same values without their window vector (header word 36 says where it is; 0: none).
const tilesOnly = states.map((s) => {
  const copy = s.slice();
  new DataView(copy.buffer).setUint32(36, 0, true);
  return copy;
});
const runtime = viewRuntime(view);
const reader = new TileReader(runtime.layout);
const values: FeatureValue[] = new Array(view.features.length);
const present: boolean[] = new Array(view.features.length);

/** µs of CPU per entity over `rounds` passes over every state. */
function measure(onDemand: false | Record<string, unknown>, encoded: readonly Uint8Array[]): number {
  const started = process.cpuUsage();
  for (let round = 0; round < flags.rounds; round++) {
    for (const bytes of encoded) {
      finalizeStored(reader.load(bytes), now, values, present);
      if (!onDemand) continue;
      const row: Record<string, unknown> = { context: onDemand };
      view.features.forEach((feature, f) => {
        row[feature.name] = values[f] ?? null;
      });
      for (const d of view.onDemand ?? []) {
        try {
          d.run(row);
        } catch {} // the status would be `error`: what a request without context gets
      }
    }
  }
  const used = process.cpuUsage(started);
  return (used.user + used.system) / (flags.rounds * states.length);
}

const bytes = states.reduce((n, s) => n + s.length, 0) / states.length;
console.log(`view ${VIEW}: ${states.length} entities, ${bytes.toFixed(0)} bytes of state each`);
const cases: Record<string, [false | Record<string, unknown>, readonly Uint8Array[]]> = {
  finalise: [false, states],
  "finalise, tiles only": [false, tilesOnly],
  "+ on-demand, with context": [{ amount: 42 }, states],
  "+ on-demand, no context": [{}, states],
};
const results: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((name) => [name, []]));
measure(false, states); // warm-up
measure(false, tilesOnly);
for (let run = 0; run < flags.runs; run++) {
  for (const [name, [onDemand, encoded]] of Object.entries(cases))
    results[name]!.push(measure(onDemand, encoded));
}
for (const [name, runs] of Object.entries(results)) {
  console.log(
    `  ${name.padEnd(28)} ${median(runs).toFixed(2)} µs/entity (runs ${runs.map((r) => r.toFixed(2)).join(", ")})`,
  );
}

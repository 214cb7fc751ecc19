/**
 * What tracing costs a request while it is off. Off, the feature server installs no hooks, wraps
 * neither the store nor the gRPC handler (src/tracing.ts), and keeps one call on the request path:
 * `tracePhase("finalise")`, which asks the OpenTelemetry API for the active span and gets none.
 * This times that call with no provider registered, and sets it against the server CPU per request
 * that `run.ts` last saved (bench/out/feature-server-<view>.json), so the share is a measured bound.
 *
 *   npx tsx bench/feature-server/tracing-off.ts [--view bench|example] [--calls 5000000]
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { tracePhase } from "../../services/feature-server/src/tracing.js";
import { fmt, numericFlags, repoRoot } from "../support/index.js";

const flags = numericFlags({ calls: 5_000_000 });
const viewArg = process.argv.indexOf("--view");
const VIEW = viewArg >= 0 ? process.argv[viewArg + 1]! : "bench";

const time = (): number => {
  const before = process.cpuUsage();
  for (let i = 0; i < flags.calls; i++) tracePhase("finalise")();
  const used = process.cpuUsage(before);
  return ((used.user + used.system) * 1000) / flags.calls; // ns per call
};
time(); // warm-up (JIT)
const runs = [time(), time(), time()].sort((a, b) => a - b);
const ns = runs[1]!;
console.log(`tracePhase with tracing off: ${fmt(ns, 1)} ns CPU per call (median of 3 × ${fmt(flags.calls)})`);

const saved = join(repoRoot, "bench", "out", `feature-server-${VIEW}.json`);
if (!existsSync(saved)) {
  console.log(`no ${saved} yet: run bench/feature-server/run.ts --view ${VIEW} for the share per request`);
  process.exit(0);
}
const { at, result } = JSON.parse(readFileSync(saved, "utf8")) as {
  at: string;
  result: { medians: Record<string, { cpuUs: number }> };
};
for (const name of ["tessera HTTP 1", "tessera HTTP 100", "tessera gRPC 1", "tessera gRPC 100"]) {
  const cpuUs = result.medians[name]?.cpuUs;
  if (cpuUs === undefined) continue;
  const share = ns / 1000 / cpuUs;
  console.log(
    `  ${name.padEnd(20)} ${fmt(cpuUs)} µs CPU/req (run of ${at}): tracing off is ${(share * 100).toFixed(4)}% of it (target ≤ 2%)`,
  );
}

/**
 * The embedded demo: every Tessera service in one process, wired through an in-memory bus, registry
 * and store (or, with --stack, the real services from .tessera/stack.env), fed by a synthetic
 * payments stream. It builds a reference from a point-in-time snapshot, then injects drift and shows
 * the alert firing.
 */
import { mkdirSync, rmSync } from "node:fs";
import { alertLine, type DriftWorkerHandle } from "@tessera/drift-worker";
import type { DriftAlertRecord, LabelRecord } from "@tessera/kafka";
import { createLogger } from "@tessera/runtime";
import { listTableFiles } from "@tessera/stores";
import type { Definitions } from "@tessera/transforms";
import { defaultGeneratorOptions, MODEL, PaymentsGenerator } from "./generator.js";
import { buildReference } from "./reference.js";
import {
  archiveDir,
  archived,
  createTopics,
  infrastructure,
  type Stops,
  sleep,
  startDrift,
  startServices,
  topics,
} from "./wiring.js";

export interface DemoOptions {
  durationSeconds: number;
  seed: number;
  /** Payments per second. */
  rate: number;
  /** Seconds after the live stream starts when drift is injected (default: 60% of the duration). */
  driftAfterSeconds?: number;
  stack: boolean;
  host: string;
  port: number;
  /** Where the archive, snapshot and profile go. */
  outDir: string;
  definitionsPath: string;
  definitions: Definitions;
  /** Print progress lines (false: only the summary). */
  verbose: boolean;
}

export interface DemoResult {
  payments: number;
  /** Payments replayed from the past before the live stream, so windows start full. */
  backlog: number;
  /** When drift was switched on (epoch ms), or null if the demo ended first. */
  driftInjectedAt: number | null;
  servedFeature: { entity: string; values: Record<string, unknown>; status: string } | null;
  alerts: DriftAlertRecord[];
  snapshot: string;
  profile: string;
  archiveFiles: number;
}

export async function runDemo(options: DemoOptions, signal: AbortSignal): Promise<DemoResult> {
  const say = (line: string) => {
    if (options.verbose) console.log(line);
  };
  const quiet = (name: string) => createLogger(name, process.env["TESSERA_LOG_LEVEL"] ?? "error");
  rmSync(options.outDir, { recursive: true, force: true });
  const archive = archiveDir(options);
  mkdirSync(archive, { recursive: true });

  const infra = infrastructure(options);
  say(`tessera demo: ${infra.describe}`);
  await createTopics(infra.kafka);

  const stops: Stops = [];
  const alerts: DriftAlertRecord[] = [];
  let drift: DriftWorkerHandle | undefined;
  let servedFeature: DemoResult["servedFeature"] = null;
  let payments = 0;
  try {
    const { server, producer } = await startServices(
      options,
      infra,
      stops,
      quiet,
      () => drift?.status() ?? null,
      (subject, state) => {
        const why = state?.causes.length
          ? ` (${state.causes.join(", ")}${state.note ? `: ${state.note}` : ""})`
          : "";
        say(`  GATE ${subject} ${state?.state ?? "released"}${why}`);
      },
    );

    // Many cards, few payments each: successive updates of one card are correlated, and a window
    // should hold mostly different cards to be a fair sample.
    const generator = new PaymentsGenerator({ ...defaultGeneratorOptions, seed: options.seed, cards: 2000 });
    const card = generator.cardIds()[0]!;
    say(
      [
        "",
        `  features:  curl -s '${server.url}/v1/features/card_id/${card}?features=card_activity:*'`,
        `             curl -s -X POST ${server.url}/v1/features -H 'content-type: application/json' \\`,
        `                  -d '{"features":["card_activity:*"],"entities":{"card_id":["${card}"]}}'`,
        `  dashboard: ${server.url}/dashboard     API docs: ${server.url}/docs     gRPC: ${options.host}:${server.grpcPort}`,
        `  metrics:   ${server.url}/metrics`,
        "",
      ].join("\n"),
    );

    // Replay the last five minutes first: windows of minutes are full from the first live payment,
    // so the reference is taken in a steady state and only the injected drift can move it. A second
    // pass fills the time the first one took, so history and live traffic join without a gap.
    let backlog = 0;
    const replay = async (from: number, to: number) => {
      const count = Math.round(((to - from) / 1000) * options.rate);
      for (let sent = 0; sent < count; sent += 2000) {
        const events = Array.from({ length: Math.min(2000, count - sent) }, (_, i) =>
          generator.payment(from + Math.floor(((sent + i) / count) * (to - from))),
        );
        await producer.publishBatch(
          topics.payments,
          events.map((e) => ({ value: e.payment, key: e.payment.card_id })),
        );
      }
      backlog += count;
    };
    say("replaying the last 5 minutes of payments…");
    const replayed = Date.now();
    await replay(replayed - 5 * 60_000, replayed);
    await replay(replayed, Date.now());
    payments += backlog;

    const total = options.durationSeconds * 1000;
    const start = Date.now();
    const referenceEnd = start + total * 0.35;
    const driftAt =
      start + (options.driftAfterSeconds !== undefined ? options.driftAfterSeconds * 1000 : total * 0.6);
    const pendingLabels: LabelRecord[] = [];
    const referencePredictions: Array<Record<string, unknown>> = [];
    let driftInjectedAt: number | null = null;
    let phase: "reference" | "steady" | "drift" = "reference";
    let reference: Awaited<ReturnType<typeof buildReference>> | undefined;
    let lastPoll = 0;

    say(`phase 1/3: streaming ${options.rate} payments/s to build a reference`);
    // Payments follow the wall clock, not the loop's speed, so the live rate equals the replayed one.
    let owed = 0;
    let last = start;
    while (Date.now() - start < total && !signal.aborted) {
      const tick = Date.now();
      owed += ((tick - last) / 1000) * options.rate;
      const count = Math.floor(owed);
      owed -= count;
      const batch = Array.from({ length: count }, (_, i) =>
        generator.payment(last + Math.floor(((i + 1) / (count + 1)) * (tick - last))),
      );
      last = tick;
      payments += batch.length;
      if (batch.length > 0) {
        await producer.publishBatch(
          topics.payments,
          batch.map((b) => ({ value: b.payment, key: b.payment.card_id })),
        );
        await producer.publishBatch(
          topics.predictions,
          batch.map((b) => ({ value: b.prediction, key: b.prediction.entity })),
        );
      }
      pendingLabels.push(...batch.map((b) => b.label));
      if (phase === "reference") {
        for (const b of batch) {
          referencePredictions.push({
            [`${MODEL}__score`]: b.prediction.score,
            [`${MODEL}__class`]: b.prediction.class,
          });
        }
      }
      const due = pendingLabels.filter((l) => l.labelled_at <= tick);
      if (due.length > 0) {
        pendingLabels.splice(0, due.length);
        await producer.publishBatch(
          topics.labels,
          due.map((l) => ({ value: l, key: l.entity })),
        );
      }

      if (phase === "reference" && tick >= referenceEnd) {
        await archived(infra.kafka, "tessera-demo-archiver", topics.payments, signal);
        reference = await buildReference(options, archive, start, referenceEnd, referencePredictions, say);
        drift = await startDrift(options, infra, reference.profileData, quiet, (alert) => {
          alerts.push(alert);
          say(`  ALERT ${alertLine(alert)}`);
        });
        stops.push(() => drift!.stop());
        phase = "steady";
        say(
          `phase 2/3: drift worker watching ${Object.keys(drift.monitor.status().reference.features).length} reference columns; traffic unchanged`,
        );
      }
      if (phase === "steady" && tick >= driftAt) {
        generator.drift = true;
        driftInjectedAt = tick;
        phase = "drift";
        say("phase 3/3: injecting drift: 25% of payments from a new country (BR), amounts 1.8× larger");
      }
      if (tick - lastPoll >= 3000) {
        lastPoll = tick;
        const served = await fetchFeatures(server.url, card).catch(() => null);
        if (served) {
          servedFeature = served;
          const quarantined = served.status === "quarantined" ? " [quarantined: quality gate]" : "";
          say(`  served ${card}: ${summarise(served.values)}${quarantined}`);
        }
      }
      await sleep(Math.max(0, 100 - (Date.now() - tick)), signal);
    }
    await drift?.flushAlerts();
    const archiveFiles = (await listTableFiles(archive)).length;
    return {
      payments,
      backlog,
      driftInjectedAt,
      servedFeature,
      alerts,
      snapshot: reference?.snapshot ?? "",
      profile: reference?.profile ?? "",
      archiveFiles,
    };
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    await infra.store.close().catch(() => {});
    infra.registry.close();
  }
}

async function fetchFeatures(
  url: string,
  card: string,
): Promise<{ entity: string; values: Record<string, unknown>; status: string } | null> {
  const response = await fetch(`${url}/v1/features`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ features: ["card_activity:*"], entities: { card_id: [card] } }),
    signal: AbortSignal.timeout(2000),
  });
  if (!response.ok) return null;
  const body = (await response.json()) as {
    entities: Record<
      string,
      { features: string[]; results: Array<{ id: string; values: unknown[]; statuses: string[] }> }
    >;
  };
  const cards = body.entities?.["card_id"];
  const result = cards?.results[0];
  // Values are there when present, or quarantined by a tripped gate (served, marked).
  const status = result?.statuses.find((s) => s === "present" || s === "quarantined");
  if (!cards || !status) return null;
  return {
    entity: card,
    values: Object.fromEntries(cards.features.map((name, i) => [name, result!.values[i]])),
    status,
  };
}

function summarise(values: Record<string, unknown>): string {
  return Object.entries(values)
    .slice(0, 5)
    .map(
      ([name, value]) =>
        `${name}=${typeof value === "number" ? Math.round(value * 100) / 100 : JSON.stringify(value)}`,
    )
    .join(" ");
}

export { MODEL };

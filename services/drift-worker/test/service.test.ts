/**
 * The worker as a service without Kafka: alert delivery to an Alertmanager-style webhook (retries,
 * never blocking), the /v1/status endpoint, record checks, and the process entry's config errors.
 */

import { execFile } from "node:child_process";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { DriftAlertRecord } from "@tessera/kafka";
import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import {
  AlertDispatcher,
  CallbackSink,
  type DriftStatus,
  defaultConfig,
  startDriftWorker,
  WebhookSink,
} from "../src/index.js";
import { workerMetrics } from "../src/metrics.js";
import { RecordError, toFeatureUpdate, toLabel, toPrediction } from "../src/records.js";
import { Generator, referenceProfile } from "./scenario.js";

const alert = (
  status: "FIRING" | "RESOLVED",
  severity: DriftAlertRecord["severity"] = "CRITICAL",
): DriftAlertRecord => ({
  alert_id: "id-1",
  status,
  kind: "FEATURE_DRIFT",
  severity,
  subject: "payments:amount",
  statistic: "psi",
  value: 0.4,
  threshold: 0.25,
  p_value: null,
  window_start: 1,
  window_end: 2,
  sample_size: 1000,
  reference: "ref",
  message: "CRITICAL payments:amount: psi 0.4 ≥ 0.25",
  at: Date.UTC(2026, 0, 1),
  trace_id: null,
  span_id: null,
});

/** A local receiver answering with the given status codes in turn (then 200), or never. */
async function receiver(codes: number[], hang = false) {
  const bodies: unknown[] = [];
  const server: Server = createServer((request: IncomingMessage, response) => {
    let text = "";
    request.on("data", (chunk) => {
      text += chunk;
    });
    request.on("end", () => {
      bodies.push(JSON.parse(text));
      if (hang) return;
      response.statusCode = codes.shift() ?? 200;
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v2/alerts`;
  return { url, bodies, close: () => new Promise((r) => server.closeAllConnections() ?? server.close(r)) };
}

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0)) await f();
});

describe("alert delivery", () => {
  it("the webhook gets Alertmanager's format; 5xx is retried; RESOLVED keeps the FIRING's labels", async () => {
    const hook = await receiver([503, 500]);
    cleanup.push(hook.close);
    const dispatcher = new AlertDispatcher([new WebhookSink(hook.url, 2000)], {
      retries: 3,
      maxQueue: 10,
      initialBackoffMs: 10,
    });
    dispatcher.publish(alert("FIRING"));
    dispatcher.publish({ ...alert("RESOLVED", "OK"), at: Date.UTC(2026, 0, 1, 1) });
    await dispatcher.flush();
    expect(hook.bodies).toHaveLength(4); // two failures, then FIRING, then RESOLVED
    const [firing, resolved] = hook.bodies.slice(2) as Array<Array<Record<string, Record<string, string>>>>;
    expect(firing![0]).toMatchObject({
      labels: {
        alertname: "TesseraFeatureDrift",
        severity: "critical",
        subject: "payments:amount",
        kind: "FEATURE_DRIFT",
      },
      annotations: { alert_id: "id-1", value: "0.4", threshold: "0.25" },
      startsAt: "2026-01-01T00:00:00.000Z",
    });
    expect(firing![0]).not.toHaveProperty("endsAt");
    expect(resolved![0]!.labels).toEqual(firing![0]!.labels);
    expect(resolved![0]).toMatchObject({
      startsAt: "2026-01-01T00:00:00.000Z",
      endsAt: "2026-01-01T01:00:00.000Z",
    });
  });

  it("a webhook that hangs or refuses never blocks publish or the other sinks; 4xx is not retried", async () => {
    const hung = await receiver([], true);
    const refusing = await receiver([400, 400, 400, 400, 400]);
    cleanup.push(hung.close, refusing.close);
    const seen: DriftAlertRecord[] = [];
    const metrics = workerMetrics(new Registry());
    const dispatcher = new AlertDispatcher(
      [
        new WebhookSink(hung.url, 60_000),
        new WebhookSink(refusing.url, 2000),
        new CallbackSink("memory", (a) => void seen.push(a)),
      ],
      { retries: 5, maxQueue: 10, initialBackoffMs: 10, metrics },
    );
    const started = performance.now();
    for (let i = 0; i < 5; i++) dispatcher.publish({ ...alert("FIRING"), alert_id: `id-${i}` });
    expect(performance.now() - started).toBeLessThan(50);
    await new Promise((r) => setTimeout(r, 500));
    expect(seen.map((a) => a.alert_id)).toEqual(["id-0", "id-1", "id-2", "id-3", "id-4"]);
    expect(refusing.bodies).toHaveLength(5); // 400 is final: one request per alert, no retry
    expect(hung.bodies).toHaveLength(1); // still waiting on the first
    dispatcher.abort();
  });

  it("a sink that stays down loses its oldest waiting alerts past maxQueue, counted", async () => {
    const hung = await receiver([], true);
    cleanup.push(hung.close);
    const metrics = workerMetrics(new Registry());
    const dispatcher = new AlertDispatcher([new WebhookSink(hung.url, 60_000)], {
      retries: 0,
      maxQueue: 2,
      metrics,
    });
    for (let i = 0; i < 6; i++) dispatcher.publish({ ...alert("FIRING"), alert_id: `id-${i}` });
    const dropped = (await metrics.deliveryFailures.get()).values.find((v) => v.labels.outcome === "dropped");
    expect(dropped?.value).toBe(3); // one in flight, two waiting, three dropped
    dispatcher.abort();
  });
});

describe("startDriftWorker in push mode", () => {
  it("serves /v1/status with freshness, drift (history and bins) and accuracy together", async () => {
    const alerts: DriftAlertRecord[] = [];
    const worker = await startDriftWorker(
      defaultConfig({ http: { port: 0 }, reference: { name: "unit" }, hysteresis: { coolDownMs: 0 } }),
      {
        input: "push",
        profile: referenceProfile(),
        sinks: [new CallbackSink("memory", (a) => void alerts.push(a))],
        schedule: false,
      },
    );
    cleanup.push(() => worker.stop());
    const generator = new Generator(4);
    for (let i = 0; i < 1000; i++) {
      const e = generator.next({ meanShift: true });
      worker.ingest.featureUpdate(e.update);
      for (const p of e.predictions) worker.ingest.prediction(p);
      worker.ingest.label(e.label);
    }
    worker.evaluate();
    await worker.flushAlerts();
    expect(alerts.map((a) => `${a.status} ${a.subject}`)).toEqual(["FIRING payments:amount_mean"]);
    const response = await fetch(`${worker.url}/v1/status`);
    expect(response.status).toBe(200);
    const status = (await response.json()) as DriftStatus;
    expect(Object.keys(status).sort()).toEqual(
      [
        "accuracy",
        "alerts",
        "drift",
        "freshness",
        "now",
        "reference",
        "service",
        "settings",
        "startedAt",
      ].sort(),
    );
    const mean = status.drift.features["payments:amount_mean"]!;
    expect(mean).toMatchObject({
      kind: "feature",
      dataset: "payments",
      type: "numerical",
      severity: "critical",
    });
    expect(mean.alert?.alertId).toBe(alerts[0]!.alert_id);
    expect(mean.latest!.bins.reference.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 9);
    expect(mean.latest!.bins.current.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 9);
    expect(mean.latest!.statistics.ks!.statistic).toBeGreaterThan(0.15);
    expect(status.drift.features["payments:country"]!.latest!.bins.labels).toContain("FR");
    expect(status.drift.datasets["payments"]).toMatchObject({
      decision: "drift",
      drifted: ["payments:amount_mean"],
      versions: ["v1"],
    });
    expect(status.accuracy.models["churn"]!.history).toHaveLength(2);
    expect(status.accuracy.models["churn"]!.latest!.accuracy).toBeGreaterThan(0.8);
    expect(status.freshness.sources["tessera.features"]!.ageSeconds).toBeGreaterThanOrEqual(0);
    expect(status.alerts.active).toHaveLength(1);
    expect((await fetch(`${worker.url}/readyz`)).status).toBe(200);
  });
});

describe("webhook repeat", () => {
  it("open alerts are re-sent every repeatMs so Alertmanager keeps them active; the topic sinks get them once", async () => {
    const hook = await receiver([]);
    cleanup.push(hook.close);
    const seen: DriftAlertRecord[] = [];
    const worker = await startDriftWorker(
      defaultConfig({ webhook: { url: hook.url, repeatMs: 1000 }, hysteresis: { coolDownMs: 0 } }),
      {
        input: "push",
        profile: referenceProfile(),
        sinks: [new CallbackSink("memory", (a) => void seen.push(a))],
        http: false,
        schedule: false,
      },
    );
    cleanup.push(() => worker.stop());
    const generator = new Generator(6);
    for (let i = 0; i < 1000; i++)
      worker.ingest.featureUpdate(generator.next({ varianceChange: true }).update);
    worker.evaluate();
    await new Promise((r) => setTimeout(r, 2500));
    expect(seen).toHaveLength(1);
    const ids = hook.bodies.map(
      (b) => (b as Array<{ annotations: { alert_id: string } }>)[0]!.annotations.alert_id,
    );
    expect(ids.length).toBeGreaterThanOrEqual(3);
    expect(new Set(ids)).toEqual(new Set([seen[0]!.alert_id]));
  });
});

describe("records", () => {
  it("wrong or missing fields are RecordErrors that name the field", () => {
    expect(() =>
      toFeatureUpdate({ view: "v", version: "1", entity: "e", event_time: 1, computed_at: 1 }),
    ).toThrow(/missing field "values"/);
    expect(() =>
      toPrediction({ prediction_id: "p", model: "m", model_version: "1", entity: "e", event_time: 1 }),
    ).toThrow(RecordError);
    expect(() => toLabel({ model: "m", entity: "e", label: {}, event_time: 1, labelled_at: 2 })).toThrow(
      /"label"/,
    );
    const update = toFeatureUpdate({
      view: "v",
      version: "1",
      entity: "e",
      event_time: new Date(5),
      computed_at: 6n,
      values: { a: { double: 1.5 }, b: null, c: "x" },
    });
    expect(update).toMatchObject({ event_time: 5, computed_at: 6, values: { a: 1.5, b: null, c: "x" } });
  });
});

describe("process entry", () => {
  it("a bad setting exits 2 and names the field and where it came from", async () => {
    const main = fileURLToPath(new URL("../src/main.ts", import.meta.url));
    const run = promisify(execFile);
    const error = await run(process.execPath, ["--conditions=@tessera/source", "--import", "tsx", main], {
      env: {
        ...process.env,
        TESSERA_DRIFT_WORKER_REFERENCE_PATH: "/tmp/x.json",
        TESSERA_DRIFT_WORKER_WINDOW_SIZE: "zero",
      },
      timeout: 60_000,
    }).catch((e: { code: number; stderr: string }) => e);
    expect(error).toMatchObject({ code: 2 });
    expect((error as { stderr: string }).stderr).toMatch(
      /window\.size: must be integer \(from TESSERA_DRIFT_WORKER_WINDOW_SIZE\)/,
    );
  }, 60_000);
});

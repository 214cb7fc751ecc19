/**
 * A restart during an incident, on the real broker and registry with a webhook receiver: the
 * worker process (main.ts) is killed with SIGKILL while an incident is open and half-way to
 * resolving, and started again. It reads its state topic back, keeps the incident (same alert_id,
 * its clear streak, its half-full window) and resolves it once: exactly one FIRING and one
 * RESOLVED on the alert topic and at the webhook.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type BusConsumer,
  createKafka,
  type DriftAlertRecord,
  ensureTopics,
  SchemaRegistry,
  TesseraProducer,
} from "@tessera/kafka";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kafkaBrokers, services, uniqueName } from "../../../test/support/index.js";
import type { DriftStatus } from "../src/index.js";
import { Generator, referenceProfile } from "./scenario.js";

const schema = (name: string) =>
  JSON.parse(readFileSync(new URL(`../../../schemas/avro/${name}.avsc`, import.meta.url), "utf8"));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function until<T>(
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  what: () => string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** What an Alertmanager-compatible receiver got: one entry per alert in each POST. */
interface Posted {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  endsAt?: string;
}

const SUBJECT = "payments:country";

describe("drift-worker restart during an open incident", () => {
  let dir: string;
  let configPath: string;
  let url: string;
  let child: ChildProcess | undefined;
  let stderr = "";
  let webhook: Server;
  let alertReader: BusConsumer;
  let producer: TesseraProducer;
  let registry: SchemaRegistry;
  const posted: Posted[] = [];
  const onTopic: DriftAlertRecord[] = [];
  const topics = {
    features: uniqueName("features"),
    predictions: uniqueName("predictions"),
    labels: uniqueName("labels"),
    alerts: uniqueName("alerts"),
    deadLetter: uniqueName("dead-letter"),
    state: uniqueName("drift-state"),
  };
  const generator = new Generator(21);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tessera-drift-restart-"));
    const kafka = createKafka({ brokers: kafkaBrokers() });
    // The state topic is left to the worker: it creates it compacted.
    const { state: _, ...inputs } = topics;
    await ensureTopics(
      kafka,
      Object.values(inputs).map((topic) => ({ topic, partitions: 1 })),
    );
    webhook = createHttpServer((request, response) => {
      let body = "";
      request.on("data", (chunk) => {
        body += chunk;
      });
      request.on("end", () => {
        posted.push(...(JSON.parse(body) as Posted[]));
        response.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => webhook.listen(0, "127.0.0.1", resolve));
    const webhookUrl = `http://127.0.0.1:${(webhook.address() as { port: number }).port}/api/v2/alerts`;

    registry = new SchemaRegistry(services().SCHEMA_REGISTRY_URL);
    producer = new TesseraProducer({
      kafka,
      registry,
      schemas: { [topics.features]: schema("feature_update") },
    });
    alertReader = kafka.consumer({ groupId: uniqueName("alert-reader") });
    await alertReader.connect();
    await alertReader.subscribe({ topics: [topics.alerts], fromBeginning: true });
    const deserializer = registry.avroDeserializer();
    await alertReader.run({
      eachMessage: async ({ message }) => {
        onTopic.push((await deserializer.deserialize(topics.alerts, message.value!)) as DriftAlertRecord);
      },
    });

    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const profilePath = join(dir, "reference.json");
    await writeFile(profilePath, JSON.stringify(referenceProfile()));
    configPath = join(dir, "drift-worker.yaml");
    await writeFile(
      configPath,
      [
        `http: { port: ${port} }`,
        `topics: ${JSON.stringify(topics)}`,
        `groupId: ${uniqueName("drift-worker")}`,
        "fromBeginning: true",
        `reference: { path: ${JSON.stringify(profilePath)}, name: restart-test }`,
        "evaluation: { intervalMs: 300 }",
        "hysteresis: { resolveAfter: 2, coolDownMs: 0 }",
        "freshness: { warnSeconds: 3600, criticalSeconds: 7200 }",
        // No repeats during the test: every POST the receiver gets is a page or a resolve.
        `webhook: { url: ${JSON.stringify(webhookUrl)}, repeatMs: 600000 }`,
        "",
      ].join("\n"),
    );
  });

  afterAll(async () => {
    if (child && child.exitCode === null) child.kill("SIGKILL");
    await alertReader?.disconnect();
    await producer?.disconnect();
    registry?.close();
    await new Promise((resolve) => webhook?.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  async function start(): Promise<void> {
    const main = fileURLToPath(new URL("../src/main.ts", import.meta.url));
    stderr = "";
    child = spawn(
      process.execPath,
      ["--conditions=@tessera/source", "--import", "tsx", main, "--config", configPath],
      {
        env: { ...process.env, ...services(), TESSERA_LOG_LEVEL: "warn" },
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    child.stderr!.on("data", (chunk) => {
      stderr += chunk;
    });
    await until(
      async () => ((await fetch(`${url}/readyz`)).status === 200 ? true : undefined),
      90_000,
      () => `/readyz (${stderr})`,
    );
  }

  const status = async () => (await (await fetch(`${url}/v1/status`)).json()) as DriftStatus;

  async function publish(events: number, incidents = {}): Promise<void> {
    await producer.publishBatch(
      topics.features,
      Array.from({ length: events }, () => ({ value: generator.next(incidents).update })),
    );
  }

  /** Waits until the worker has saved its state after `condition` held. */
  async function savedAfter(condition: (s: DriftStatus) => boolean, what: string): Promise<DriftStatus> {
    const seen = await until(
      async () => {
        const s = await status();
        return condition(s) ? s : undefined;
      },
      60_000,
      () => what,
    );
    return until(
      async () => {
        const s = await status();
        return s.state && s.state.savedAt !== null && s.state.savedAt > seen.now && s.state.undelivered === 0
          ? s
          : undefined;
      },
      30_000,
      () => `a state save after ${what}`,
    );
  }

  const firings = () => posted.filter((p) => p.labels.subject === SUBJECT && !p.endsAt);
  const resolves = () => posted.filter((p) => p.labels.subject === SUBJECT && p.endsAt);
  const counts = () =>
    `topic: ${onTopic.map((a) => `${a.status} ${a.subject}`).join(", ") || "nothing"}; webhook: ${firings().length} firing, ${resolves().length} resolved`;

  it("SIGKILL with an incident open and half-resolved: one FIRING and one RESOLVED, on the topic and at the webhook", async () => {
    await start();

    // A new category takes 20% of `country`: one window, one page.
    await publish(1000, { newCategory: true });
    const firing = await savedAfter((s) => !!s.drift.features[SUBJECT]?.alert, "the FIRING");
    const alertId = firing.drift.features[SUBJECT]!.alert!.alertId;
    await until(
      async () => (firings().length === 1 && onTopic.some((a) => a.status === "FIRING") ? true : undefined),
      30_000,
      counts,
    );

    // One clear window (resolveAfter is 2), then half of the next: the state to carry over.
    await publish(1000);
    await savedAfter((s) => s.drift.features[SUBJECT]!.history.length === 2, "the first clear window");
    await publish(500);
    const before = await savedAfter(
      (s) => s.drift.features[SUBJECT]!.openWindow.observations === 500,
      "half of the second clear window",
    );
    expect(before.drift.features[SUBJECT]!.alert!.alertId).toBe(alertId);

    child!.kill("SIGKILL");
    await once(child!, "exit");
    await start();

    // Soft: without its state the worker gets this wrong, and the alert counts below say how.
    const after = await status();
    expect.soft(after.state?.restoredRecords, "state records read back").toBeGreaterThan(0);
    const restored = after.drift.features[SUBJECT];
    expect.soft(restored?.alert?.alertId, "the incident after the restart").toBe(alertId);
    expect.soft(restored?.openWindow.observations, "the half-full window after the restart").toBe(500);

    // The rest of the second clear window resolves the incident opened before the kill.
    await publish(500);
    await until(
      async () =>
        resolves().length >= 1 && onTopic.some((a) => a.status === "RESOLVED" && a.subject === SUBJECT)
          ? true
          : undefined,
      60_000,
      () => `the RESOLVED (${counts()})`,
    );
    // Anything sent twice would arrive within a few evaluations.
    await new Promise((r) => setTimeout(r, 2000));

    const mine = onTopic.filter((a) => a.subject === SUBJECT);
    expect(
      mine.map((a) => [a.status, a.alert_id]),
      counts(),
    ).toEqual([
      ["FIRING", alertId],
      ["RESOLVED", alertId],
    ]);
    expect(
      onTopic.filter((a) => a.subject !== SUBJECT),
      "no other alert",
    ).toEqual([]);
    expect(firings().map((p) => p.annotations.alert_id)).toEqual([alertId]);
    expect(resolves().map((p) => p.annotations.alert_id)).toEqual([alertId]);
    // Alertmanager matches the RESOLVED to its FIRING by labels: the same, severity included.
    expect(resolves()[0]!.labels).toEqual(firings()[0]!.labels);

    // The worker created its state topic compacted.
    const admin = createKafka({ brokers: kafkaBrokers() }).admin();
    await admin.connect();
    const described = await admin.describeTopicConfigs([topics.state]);
    await admin.disconnect();
    expect(described[0]!.configEntries.find((e) => e.configName === "cleanup.policy")?.configValue).toBe(
      "compact",
    );

    child!.kill("SIGTERM");
    const [code] = await once(child!, "exit");
    expect(code, stderr).toBe(0);
  }, 240_000); // two process starts (tsx) on a shared machine
});

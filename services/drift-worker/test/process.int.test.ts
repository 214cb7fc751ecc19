/**
 * The process a user runs: main.ts with a config file, against the real broker and registry.
 * Ready once in its group, reports through /v1/status (drift, freshness with consumer lag),
 * and stops cleanly on SIGTERM.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createKafka, ensureTopics, SchemaRegistry, TesseraProducer } from "@tessera/kafka";
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

async function until<T>(probe: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

describe("drift-worker process", () => {
  let dir: string;
  let child: ChildProcess;
  let stderr = "";
  const topics = {
    features: uniqueName("features"),
    predictions: uniqueName("predictions"),
    labels: uniqueName("labels"),
    alerts: uniqueName("alerts"),
    deadLetter: uniqueName("dead-letter"),
  };
  const groupId = uniqueName("drift-worker");

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tessera-drift-worker-"));
    await ensureTopics(
      createKafka({ brokers: kafkaBrokers() }),
      Object.values(topics).map((topic) => ({ topic, partitions: 1 })),
    );
  });

  afterAll(async () => {
    if (child && child.exitCode === null) child.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
  });

  it("starts from a config file, alerts on drift, reports lag, and exits 0 on SIGTERM", async () => {
    const port = await freePort();
    const profilePath = join(dir, "reference.json");
    await writeFile(profilePath, JSON.stringify(referenceProfile()));
    const configPath = join(dir, "drift-worker.yaml");
    await writeFile(
      configPath,
      [
        `http: { port: ${port} }`,
        `topics: ${JSON.stringify(topics)}`,
        `groupId: ${groupId}`,
        "fromBeginning: true",
        `reference: { path: ${JSON.stringify(profilePath)}, name: process-test }`,
        "evaluation: { intervalMs: 500 }",
        "hysteresis: { coolDownMs: 0 }",
        "",
      ].join("\n"),
    );
    const main = fileURLToPath(new URL("../src/main.ts", import.meta.url));
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
    const url = `http://127.0.0.1:${port}`;
    await until(
      async () => ((await fetch(`${url}/readyz`)).status === 200 ? true : undefined),
      90_000,
      `/readyz (${stderr})`,
    );

    const registry = new SchemaRegistry(services().SCHEMA_REGISTRY_URL);
    const producer = new TesseraProducer({
      kafka: createKafka({ brokers: kafkaBrokers() }),
      registry,
      schemas: { [topics.features]: schema("feature_update") },
    });
    const generator = new Generator(13);
    await producer.publishBatch(
      topics.features,
      Array.from({ length: 1000 }, () => ({ value: generator.next({ newCategory: true }).update })),
    );
    await producer.disconnect();
    registry.close();

    const status = await until(
      async () => {
        const s = (await (await fetch(`${url}/v1/status`)).json()) as DriftStatus;
        const lagged = s.freshness.lag.find((l) => l.topic === topics.features);
        return s.drift.features["payments:country"]?.alert && lagged?.lag === 0 ? s : undefined;
      },
      60_000,
      "the drift alert and a lag reading of 0",
    );
    expect(status.reference.name).toBe("process-test");
    expect(status.alerts.active.map((a) => [a.kind, a.subject, a.statistic])).toEqual([
      ["FEATURE_DRIFT", "payments:country", "chi_squared"],
    ]);
    expect(status.freshness.lag.map((l) => l.group)).toEqual([groupId, groupId, groupId]);
    expect(status.freshness.sources[topics.features]!.severity).toBe("ok");

    child.kill("SIGTERM");
    const [code] = await once(child, "exit");
    expect(code, stderr).toBe(0);
  });
});

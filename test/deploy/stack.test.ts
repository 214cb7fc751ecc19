/**
 * The shipped deployment configuration, run for real: the four services started through the image's
 * entry script with k8s/base/config's files, against the test stack's Kafka, registry and Redis.
 * Only what docker-compose.yml also sets from outside differs (connection variables, and here
 * loopback ports, unique group names and key prefixes, and a unique source topic so parallel runs
 * do not meet). Then an event goes in, a feature comes out with the development API key, and every
 * metric the Grafana dashboard and the alert rules use is one the running services expose.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TesseraProducer } from "@tessera/kafka";
import { afterAll, describe, expect, it } from "vitest";
import { services, uniqueName } from "../support/index.js";
import { repoPath } from "./support.js";

const config = repoPath("k8s/base/config");
const entrypoint = repoPath("deploy/docker/entrypoint.sh");
const topic = uniqueName("payments");
const prefix = `${uniqueName("deploy")}:`;
const work = mkdtempSync(join(tmpdir(), "tessera-deploy-"));
interface Running {
  name: string;
  env: Record<string, string>;
  child: ChildProcess;
  log: string[];
  restarts: number;
}
const children: Running[] = [];
/** Like compose's `restart: unless-stopped` and a pod's restart policy, within a start-up budget. */
const maxRestarts = 3;
const ports: Record<string, number> = {};

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function spawnService(name: string, env: Record<string, string>, log: string[]): ChildProcess {
  const child = spawn(entrypoint, [name, "--config", join(config, `${name}.yaml`)], {
    env: { ...process.env, ...services(), ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.on("data", (chunk) => log.push(String(chunk)));
  child.stderr!.on("data", (chunk) => log.push(String(chunk)));
  return child;
}

function start(name: string, env: Record<string, string>): void {
  const log: string[] = [];
  children.push({ name, env, child: spawnService(name, env, log), log, restarts: 0 });
}

async function ready(name: string, port: number, deadline: number): Promise<void> {
  const entry = children.find((c) => c.name === name)!;
  while (Date.now() < deadline) {
    if (entry.child.exitCode !== null) {
      // A service may give up at start when a store answers slowly on this loaded machine; the
      // orchestrator restarts it. A configuration error (exit 2) or repeated exits fail the test.
      if (entry.child.exitCode === 2 || entry.restarts >= maxRestarts) {
        throw new Error(
          `${name} exited ${entry.child.exitCode} (${entry.restarts} restarts):\n${entry.log.join("")}`,
        );
      }
      entry.restarts++;
      entry.log.push(`--- restart ${entry.restarts} ---\n`);
      entry.child = spawnService(name, entry.env, entry.log);
    }
    const status = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`${name} not ready on ${port} in time:\n${entry.log.join("").slice(-2000)}`);
}

/** Starts everything once; awaited by each test, so a start-up failure fails the tests that need it. */
let started: Promise<void> | undefined;
const stack = () => {
  started ??= startStack();
  return started;
};

async function startStack(): Promise<void> {
  // The shipped definitions, reading a topic of this run's own.
  const definitions = join(work, "definitions.yaml");
  writeFileSync(
    definitions,
    readFileSync(join(config, "definitions.yaml"), "utf8").replace(
      "topic: payments.transactions",
      `topic: ${topic}`,
    ),
  );
  // As compose's tessera-init does, through the image's `tessera` entry: every default topic (the drift
  // worker's shipped config reads tessera.features/predictions/labels), then this run's source topic.
  for (const args of [[], [topic]]) {
    const create = spawnSync(entrypoint, ["tessera", "topics", "create", "--partitions", "2", ...args], {
      env: { ...process.env, ...services() },
      encoding: "utf8",
    });
    expect(create.status, create.stderr).toBe(0);
  }

  for (const name of ["processor", "archiver", "http", "grpc", "drift"]) ports[name] = await freePort();
  start("stream-processor", {
    TESSERA_PROCESSOR_NAME: uniqueName("deploy"),
    TESSERA_PROCESSOR_DEFINITIONS: definitions,
    TESSERA_PROCESSOR_OPS_HOST: "127.0.0.1",
    TESSERA_PROCESSOR_OPS_PORT: String(ports["processor"]),
    TESSERA_PROCESSOR_STORE_KEY_PREFIX: prefix,
  });
  start("archiver", {
    TESSERA_ARCHIVER_TOPICS: topic,
    TESSERA_ARCHIVER_ROOT: join(work, "archive"),
    TESSERA_ARCHIVER_GROUP_ID: uniqueName("deploy-archiver"),
    TESSERA_ARCHIVER_OPS_HOST: "127.0.0.1",
    TESSERA_ARCHIVER_OPS_PORT: String(ports["archiver"]),
  });
  start("feature-server", {
    TESSERA_FEATURE_SERVER_DEFINITIONS: definitions,
    TESSERA_FEATURE_SERVER_HTTP_HOST: "127.0.0.1",
    TESSERA_FEATURE_SERVER_HTTP_PORT: String(ports["http"]),
    TESSERA_FEATURE_SERVER_GRPC_HOST: "127.0.0.1",
    TESSERA_FEATURE_SERVER_GRPC_PORT: String(ports["grpc"]),
    TESSERA_FEATURE_SERVER_AUTH_KEYS_FILE: repoPath("k8s/overlays/dev/api-keys.yaml"),
    TESSERA_FEATURE_SERVER_STORE_KEY_PREFIX: prefix,
  });
  start("drift-worker", {
    TESSERA_DRIFT_WORKER_HTTP_HOST: "127.0.0.1",
    TESSERA_DRIFT_WORKER_HTTP_PORT: String(ports["drift"]),
    TESSERA_DRIFT_WORKER_REFERENCE_PATH: join(config, "reference.json"),
    TESSERA_DRIFT_WORKER_DEFINITIONS: definitions,
    TESSERA_DRIFT_WORKER_GROUP_ID: uniqueName("deploy-drift"),
  });
  const deadline = Date.now() + 90_000;
  await Promise.all([
    ready("stream-processor", ports["processor"]!, deadline),
    ready("archiver", ports["archiver"]!, deadline),
    ready("feature-server", ports["http"]!, deadline),
    ready("drift-worker", ports["drift"]!, deadline),
  ]);
  for (const { name, restarts, log } of children) {
    if (restarts > 0) {
      const exits = log
        .join("")
        .split("--- restart")
        .map((part) => part.trim().split("\n").at(-1));
      console.warn(
        `stack.test: ${name} was restarted ${restarts} time(s) during start-up: ${exits.join(" | ")}`,
      );
    }
  }
}

afterAll(async () => {
  await Promise.all(
    children.map(
      ({ child }) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null) return resolve();
          child.once("exit", () => resolve());
          child.kill("SIGTERM");
        }),
    ),
  );
});

describe("the shipped configuration, running", () => {
  it("turns a published payment into served features, with the development API key", async () => {
    await stack();
    const card = uniqueName("card");
    const schema = JSON.parse(readFileSync(repoPath("schemas/avro/payment_transaction.avsc"), "utf8"));
    const producer = new TesseraProducer({
      brokers: services().KAFKA_BROKERS.split(","),
      schemas: { [topic]: schema },
    });
    const now = Date.now();
    try {
      for (const [i, amount] of [12.5, 40, 7.25].entries()) {
        await producer.publish(
          topic,
          {
            transaction_id: `${card}-${i}`,
            card_id: card,
            merchant_id: `m${i}`,
            amount,
            currency: "USD",
            country: "US",
            event_time: now - (3 - i) * 60_000,
          },
          { key: card },
        );
      }
    } finally {
      await producer.disconnect();
    }
    const url = `http://127.0.0.1:${ports["http"]}/v1/features`;
    const body = JSON.stringify({
      features: ["card_activity:*", "card_geography:*"],
      entities: { card_id: [card] },
    });
    const ask = (key: string) =>
      fetch(url, { method: "POST", headers: { "x-api-key": key, "content-type": "application/json" }, body });
    // Retry while the features are not there yet, or the server sheds load (503 + Retry-After) on this busy machine.
    let values: unknown[] = [];
    const answers: string[] = [];
    for (let tries = 0; tries < 60 && values[0] !== 3; tries++) {
      const response = await ask("tessera-dev-key");
      const text = await response.text();
      answers.push(`${response.status} ${text.slice(0, 200)}`);
      expect([200, 503], answers.join("\n")).toContain(response.status);
      if (response.status === 200) {
        values = (JSON.parse(text) as { entities: { card_id: { results: Array<{ values: unknown[] }> } } })
          .entities.card_id.results[0]!.values;
      }
      if (values[0] !== 3) await new Promise((resolve) => setTimeout(resolve, 500));
    }
    // txn_count_1h, amount_sum_6h, amount_mean_24h, amount_max_24h, merchants_7d, countries_24h, last_country
    expect(values).toEqual([3, 59.75, 59.75 / 3, 40, 3, 1, "US"]);
    expect((await ask("not-a-key")).status).toBe(401);
  }, 150_000);

  it("exposes every metric the Grafana dashboard and the alert rules query", async () => {
    await stack();
    const exposed = new Set<string>();
    for (const port of [ports["processor"], ports["archiver"], ports["http"], ports["drift"]]) {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      for (const [, name] of text.matchAll(/^# TYPE (\S+) /gm)) exposed.add(name!);
    }
    const queried = new Set(
      [
        readFileSync(repoPath("deploy/grafana/dashboards/tessera.json"), "utf8"),
        readFileSync(repoPath("deploy/prometheus/alerts.yml"), "utf8"),
      ]
        .flatMap((text) => [...text.matchAll(/\btessera_[a-z_]+/g)].map((m) => m[0]))
        .map((name) => name.replace(/_(bucket|sum|count)$/, "")),
    );
    expect(queried.size).toBeGreaterThan(20);
    expect([...queried].filter((name) => !exposed.has(name))).toEqual([]);
  }, 150_000);
});

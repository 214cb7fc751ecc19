/**
 * A Redis server and a Kafka broker of the test's own, on free ports, so it can restart them
 * without touching the shared stack other tests use. Kafka is launched exactly as scripts/stack
 * launches it (same jars, same settings), only with its own ports and state directory.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { loadConfig } from "../../../scripts/stack/config.js";
import { serviceSpecs } from "../../../scripts/stack/services.js";
import { exited, sleep } from "./child.js";

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface PrivateServer {
  /** Stops it gracefully and starts it again on the same port and data. */
  restart(downMs?: number): Promise<void>;
  stop(): Promise<void>;
}

async function ready(probe: () => Promise<void>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await probe();
    } catch (error) {
      if (Date.now() > deadline)
        throw new Error(`${what} not ready after ${timeoutMs} ms: ${(error as Error).message}`);
      await sleep(500);
    }
  }
}

function supervised(
  start: () => ChildProcess,
  probe: () => Promise<void>,
  what: string,
  timeoutMs: number,
): Promise<PrivateServer> {
  let child = start();
  const server: PrivateServer = {
    async restart(downMs = 1000) {
      child.kill("SIGTERM");
      await exited(child);
      await sleep(downMs);
      child = start();
      await ready(probe, timeoutMs, what);
    },
    async stop() {
      child.kill("SIGTERM");
      const stopped = exited(child);
      const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
      await stopped;
      clearTimeout(timer);
    },
  };
  return ready(probe, timeoutMs, what).then(() => server);
}

/** redis-server with an append-only file synced on every write: a restart keeps what was acknowledged. */
export async function privateRedis(dir: string): Promise<PrivateServer & { url: string }> {
  const port = await freePort();
  const data = join(dir, "redis");
  mkdirSync(data, { recursive: true });
  const log = createWriteStream(join(dir, "redis.log"), { flags: "a" });
  const start = () => {
    const child = spawn(
      "redis-server",
      [
        "--bind",
        "127.0.0.1",
        "--port",
        String(port),
        "--dir",
        data,
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
    return child;
  };
  const { Redis } = await import("ioredis");
  const probe = async () => {
    const client = new Redis({
      port,
      host: "127.0.0.1",
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    try {
      await client.connect();
      await client.ping();
    } finally {
      client.disconnect();
    }
  };
  const server = await supervised(start, probe, "private redis", 15_000);
  return { ...server, url: `redis://127.0.0.1:${port}` };
}

/** A single-node KRaft broker from the stack's cached jars. */
export async function privateKafka(dir: string): Promise<PrivateServer & { broker: string }> {
  const shared = loadConfig();
  const [kafka, kafkaController] = [await freePort(), await freePort()];
  const spec = serviceSpecs({
    ...shared,
    stateDir: join(dir, "kafka-state"),
    ports: { ...shared.ports, kafka, kafkaController },
  }).kafka;
  spec.fetch();
  const log = createWriteStream(join(dir, "kafka.log"), { flags: "a" });
  const start = () => {
    const { command, args } = spec.members[0]!.prepare();
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
    return child;
  };
  const server = await supervised(start, () => spec.probe(), "private kafka", spec.readyTimeoutMs);
  return { ...server, broker: `127.0.0.1:${kafka}` };
}

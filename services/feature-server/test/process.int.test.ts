/**
 * The service process (src/main.ts) as an operator runs it: a config file, a keys file with hashed
 * keys, a YAML definitions file, Redis from REDIS_URL; it serves, and SIGTERM drains and exits 0.
 * A bad setting exits 2 naming the field and where it came from. A Redis that does not answer at
 * start (a redis-server of this test, paused with SIGSTOP) is waited for, not a reason to exit.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RedisOnlineStore } from "@tessera/stores";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { services, uniqueName } from "../../../test/support/index.js";
import { type FeatureResponse, hashKey } from "../src/index.js";
import { DEFINITIONS_YAML, definitions, events, KEYS, oracle, writeTiles } from "./fixtures.js";

const MAIN = join(import.meta.dirname, "../src/main.ts");
const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawn(process.execPath, ["--conditions=@tessera/source", "--import", "tsx", MAIN, ...args], {
    env: { ...process.env, ...services(), ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));

/** The HTTP URL the process logs once it listens (it may not be ready yet). */
const listening = (child: ChildProcess, exit: Promise<number | null>, log: { text: string }) =>
  new Promise<string>((resolve, reject) => {
    child.stdout!.on("data", (chunk) => {
      log.text += chunk;
      const match = /"url":"(http:[^"]+)"/.exec(log.text);
      if (match) resolve(match[1]!);
    });
    child.stderr!.on("data", (chunk) => {
      log.text += chunk;
    });
    void exit.then((code) => reject(new Error(`exited ${code}: ${log.text}`)));
  });

async function readyz(url: string): Promise<number> {
  return (await fetch(`${url}/readyz`)).status;
}

async function until(probe: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe("feature-server process", () => {
  const dir = mkdtempSync(join(tmpdir(), "fs-process-"));
  const prefix = `${uniqueName("fs-proc")}:`;
  const defs = definitions();
  const now = Date.now();
  const rows = events(now, 300, 6);

  beforeAll(async () => {
    const store = new RedisOnlineStore({ url: services().REDIS_URL, keyPrefix: prefix });
    await writeTiles(store, defs, rows, now);
    await store.close();
    writeFileSync(join(dir, "features.yaml"), DEFINITIONS_YAML);
    writeFileSync(
      join(dir, "keys.yaml"),
      `keys:\n  - { id: ops, sha256: ${hashKey(KEYS.all)}, views: ["*"] }\n`,
    );
    writeFileSync(
      join(dir, "config.yaml"),
      [
        `definitions: ${join(dir, "features.yaml")}`,
        "http: { port: 0 }",
        "grpc: { port: 0 }",
        `store: { kind: redis, keyPrefix: "${prefix}" }`,
        `auth: { keysFile: ${join(dir, "keys.yaml")} }`,
      ].join("\n"),
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("serves with its config and keys files, then drains on SIGTERM and exits 0", async () => {
    const child = run(["--config", join(dir, "config.yaml")]);
    const exit = exited(child);
    const log = { text: "" };
    const url = await listening(child, exit, log);
    await until(async () => (await readyz(url)) === 200, 10_000, "/readyz");
    const res = await fetch(`${url}/v1/features/card_id/card-2?features=card:n_1h,card:amount_sum_1h`, {
      headers: { "x-api-key": KEYS.all },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as FeatureResponse;
    const expected = oracle(defs, "card", rows, "card-2", body.asOf);
    expect(body.entities["card_id"]!.results[0]!.values[0]).toBe(expected["n_1h"]);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    expect((await fetch(`${url}/docs/json`)).status).toBe(200);
    child.kill("SIGTERM");
    expect(await exit).toBe(0);
    expect(log.text).toContain('"audit":true');
    expect(log.text).not.toContain(KEYS.all);
  });

  it("Redis paused for 5 s at start: not ready meanwhile, no exit, then ready and serving", async () => {
    const port = await freePort();
    const redis = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      {
        stdio: "ignore",
      },
    );
    const redisUrl = `redis://127.0.0.1:${port}`;
    try {
      const store = new RedisOnlineStore({ url: redisUrl, keyPrefix: prefix });
      await until(
        async () => {
          await store.applyView({ name: "probe", version: "1", retentionMs: 1000 });
          return true;
        },
        10_000,
        "the test's redis-server",
      );
      await writeTiles(store, defs, rows, now);
      await store.close();

      redis.kill("SIGSTOP");
      const child = run(["--config", join(dir, "config.yaml")], { REDIS_URL: redisUrl });
      const exit = exited(child);
      const log = { text: "" };
      const url = await listening(child, exit, log);
      // Redis stays paused for 5 s of the server's life: listening, alive, not ready, and feature
      // requests get 503 with Retry-After.
      const listenedAt = Date.now();
      const notReady: number[] = [];
      while (Date.now() - listenedAt < 5000) {
        notReady.push(await readyz(url));
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      expect(new Set(notReady)).toEqual(new Set([503]));
      const early = await fetch(`${url}/v1/features/card_id/card-2?features=card:n_1h`, {
        headers: { "x-api-key": KEYS.all },
      });
      expect(early.status).toBe(503);
      expect(early.headers.get("retry-after")).not.toBeNull();
      expect(child.exitCode).toBeNull();

      redis.kill("SIGCONT");
      await until(async () => (await readyz(url)) === 200, 20_000, `/readyz after SIGCONT (${log.text})`);
      const res = await fetch(`${url}/v1/features/card_id/card-2?features=card:n_1h`, {
        headers: { "x-api-key": KEYS.all },
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as FeatureResponse;
      expect(body.entities["card_id"]!.results[0]!.values[0]).toBe(
        oracle(defs, "card", rows, "card-2", body.asOf)["n_1h"],
      );
      expect(child.exitCode).toBeNull();
      expect(log.text).toContain("online store not reachable yet");
      child.kill("SIGTERM");
      expect(await exit).toBe(0);
    } finally {
      redis.kill("SIGCONT");
      redis.kill("SIGKILL");
      await once(redis, "exit");
    }
  });

  it("exits 2 on a bad setting, naming the field and its origin", async () => {
    const child = run(["--config", join(dir, "config.yaml")], {
      TESSERA_FEATURE_SERVER_LIMITS_MAX_ENTITIES: "lots",
    });
    let err = "";
    child.stderr!.on("data", (chunk) => {
      err += chunk;
    });
    expect(await exited(child)).toBe(2);
    expect(err).toContain("limits.maxEntities");
    expect(err).toContain("TESSERA_FEATURE_SERVER_LIMITS_MAX_ENTITIES");
  });
});

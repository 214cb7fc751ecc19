/**
 * The service process (src/main.ts) as an operator runs it: a config file, a keys file with hashed
 * keys, a YAML definitions file, Redis from REDIS_URL; it serves, and SIGTERM drains and exits 0.
 * A bad setting exits 2 naming the field and where it came from.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
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
    let log = "";
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout!.on("data", (chunk) => {
        log += chunk;
        const match = /"url":"(http:[^"]+)"/.exec(log);
        if (match) resolve(match[1]!);
      });
      void exit.then((code) => reject(new Error(`exited ${code}: ${log}`)));
    });
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
    expect(log).toContain('"audit":true');
    expect(log).not.toContain(KEYS.all);
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

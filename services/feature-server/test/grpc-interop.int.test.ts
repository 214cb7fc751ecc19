/**
 * Independent gRPC interop: a Python grpcio client, its stubs generated from the proto by
 * grpcio-tools in this test (test/oracles/grpc), gets the same vectors as HTTP from a server over
 * real Redis — values, statuses, asOf, freshness and errors.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { RedisOnlineStore } from "@tessera/stores";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { services, uniqueName } from "../../../test/support/index.js";
import {
  type FeatureResponse,
  type FeatureServerHandle,
  featureServerConfig,
  PROTO_PATH,
  startFeatureServer,
} from "../src/index.js";
import { apiKeys, definitions, events, KEYS, writeTiles } from "./fixtures.js";

const ORACLE = join(import.meta.dirname, "../../../test/oracles/grpc");
const PYTHON = join(ORACLE, ".venv/bin/python");

interface PyValue {
  number?: number;
  text?: string;
  flag?: boolean;
  list?: { items?: PyValue[] };
}
// biome-ignore lint/suspicious/noExplicitAny: protobuf's JSON mapping, checked field by field below
type Json = any;
const fromPy = (v: PyValue | undefined): unknown =>
  v?.number ?? v?.text ?? v?.flag ?? (v?.list ? (v.list.items ?? []).map(fromPy) : null);

describe("Python grpcio client", () => {
  const defs = definitions();
  const now = Date.now();
  const rows = events(now, 500, 12);
  let store: RedisOnlineStore;
  let server: FeatureServerHandle;
  let stubs: string;

  // Asynchronous: the server runs in this process, so a blocking spawn would stall it.
  const python = (request: unknown, key = KEYS.all) =>
    new Promise<Json>((resolve, reject) => {
      const child = spawn(PYTHON, [join(ORACLE, "client.py"), stubs, `127.0.0.1:${server.grpcPort}`, key]);
      let out = "";
      let err = "";
      child.stdout.on("data", (chunk) => {
        out += chunk;
      });
      child.stderr.on("data", (chunk) => {
        err += chunk;
      });
      child.on("close", (code) =>
        code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`python client failed: ${err}`)),
      );
      child.stdin.end(JSON.stringify(request));
    });

  beforeAll(async () => {
    if (!existsSync(PYTHON)) {
      throw new Error(
        `${PYTHON} is missing: run scripts/setup (creates the venv with grpcio and grpcio-tools)`,
      );
    }
    stubs = mkdtempSync(join(tmpdir(), "tessera-grpc-py-"));
    execFileSync(PYTHON, [
      "-m",
      "grpc_tools.protoc",
      `-I${dirname(PROTO_PATH)}`,
      `--python_out=${stubs}`,
      `--grpc_python_out=${stubs}`,
      PROTO_PATH,
    ]);
    store = new RedisOnlineStore({ url: services().REDIS_URL, keyPrefix: `${uniqueName("fs-py")}:` });
    await writeTiles(store, defs, rows, now);
    server = await startFeatureServer(
      featureServerConfig({ http: { port: 0 }, grpc: { port: 0 }, reliability: { maxEventLoopDelayMs: 0 } }),
      { store, definitions: defs, apiKeys: apiKeys(), logger: pino({ level: "silent" }) },
    );
  });
  afterAll(async () => {
    await server?.stop();
    await store?.close();
    if (stubs) rmSync(stubs, { recursive: true, force: true });
  });

  it("gets the same vectors as HTTP", async () => {
    const at = now + 2 * 60_000;
    const cards = ["card-0", "card-3", "card-11", "no-such-card"];
    const res = await fetch(`${server.url}/v1/features`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": KEYS.all },
      body: JSON.stringify({
        features: ["card:*", "merchant:n_1h"],
        entities: { card_id: cards, merchant_id: ["m-2"] },
        at,
        context: { amount: 75.5 },
      }),
    });
    const http = (await res.json()) as FeatureResponse;
    const py = await python({
      features: ["card:*", "merchant:n_1h"],
      entities: { card_id: { ids: cards }, merchant_id: { ids: ["m-2"] } },
      at_ms: at,
      context: { amount: { number: 75.5 } },
    });
    expect(Number(py.as_of_ms)).toBe(http.asOf);
    const names = Object.values(http.entities).flatMap((g) => g.features);
    expect(py.feature_names).toEqual(names);
    for (const [view, info] of Object.entries(http.views)) {
      expect(Number(py.view_event_time_ms[view])).toBe(info.newestEventTime);
    }
    const httpRows = Object.entries(http.entities).flatMap(([key, group]) =>
      group.results.map((row) => ({ key, group, row })),
    );
    expect(py.results).toHaveLength(httpRows.length);
    httpRows.forEach(({ key, group, row }, i) => {
      const result = py.results[i];
      expect([result.entity_key, result.entity_id]).toEqual([key, row.id]);
      group.features.forEach((name, c) => {
        expect(fromPy(result.features[name].value), `${row.id} ${name}`).toEqual(row.values[c]);
        expect(result.features[name].status).toBe(row.statuses[c]!.toUpperCase());
      });
    });
  });

  it("sees the errors as gRPC codes", async () => {
    expect(await python({ features: ["card:nope"], entities: { card_id: { ids: ["a"] } } })).toMatchObject({
      code: "INVALID_ARGUMENT",
      details: expect.stringContaining("features[0]"),
    });
    expect(
      (await python({ features: ["card:n_1h"], entities: { card_id: { ids: ["a"] } } }, "bad-key")).code,
    ).toBe("UNAUTHENTICATED");
    expect(
      (
        await python(
          { features: ["merchant:n_1h"], entities: { merchant_id: { ids: ["a"] } } },
          KEYS.cardOnly,
        )
      ).code,
    ).toBe("PERMISSION_DENIED");
  });
});

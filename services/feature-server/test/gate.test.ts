/** Gate behaviour that timing cannot show on the real stack: a server whose gates are not read yet serves nothing. */
import { MemoryOnlineStore } from "@tessera/stores";
import type { GateState } from "@tessera/transforms";
import { parseDefinitionsYaml } from "@tessera/transforms";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type FeatureServerHandle,
  featureServerConfig,
  type GateSource,
  startFeatureServer,
} from "../src/index.js";
import { apiKeys, KEYS, writeTiles } from "./fixtures.js";

const defs = parseDefinitionsYaml(`
sources:
  - { name: tx, topic: gate.tx, entity: card_id, timestamp: ts }
views:
  - { name: scored, source: tx, features: [{ name: n_1h, op: count, window: 1h, hop: 1m }] }
models:
  - { name: fraud-v1, views: [scored] }
`);

describe("gates before they are read", () => {
  const states = new Map<string, GateState>();
  const source: GateSource & { isCaughtUp: boolean } = { isCaughtUp: false, get: (s) => states.get(s) };
  let server: FeatureServerHandle;
  const post = () =>
    fetch(`${server.url}/v1/features`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": KEYS.all },
      body: JSON.stringify({ features: ["scored:n_1h"], entities: { card_id: ["c"] } }),
    });

  beforeAll(async () => {
    const store = new MemoryOnlineStore();
    const now = Date.now();
    await writeTiles(
      store,
      defs,
      [{ card_id: "c", merchant_id: "m", ts: now - 1000, amount: 1, country: "FR" }],
      now,
    );
    server = await startFeatureServer(featureServerConfig({ http: { port: 0 }, grpc: { enabled: false } }), {
      store,
      definitions: defs,
      apiKeys: apiKeys(),
      logger: pino({ level: "silent" }),
      gates: source,
    });
  });
  afterAll(() => server?.stop());

  it("is not ready and answers 503 until the gate topic is read; then serves what it says", async () => {
    expect((await fetch(`${server.url}/readyz`)).status).toBe(503);
    const early = await post();
    expect(early.status).toBe(503);
    expect(((await early.json()) as { message: string }).message).toMatch(/quality gates have not been read/);
    const at = Date.now();
    states.set("model:fraud-v1", {
      subject: "model:fraud-v1",
      state: "tripped",
      causes: ["drift_critical"],
      since: at,
      by: "drift-worker",
      at,
      log: [],
    });
    source.isCaughtUp = true;
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    const body = (await (await post()).json()) as {
      entities: { card_id: { results: Array<{ statuses: string[] }> } };
    };
    expect(body.entities.card_id.results[0]!.statuses).toEqual(["quarantined"]);
  });
});

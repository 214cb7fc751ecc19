/**
 * The quality gate on the real stack (Kafka + Redis): a state published on the compacted gate topic
 * is what every feature server serves — `quarantined` values (policy quarantine) or 503 /
 * UNAVAILABLE with reason quality_gate (policy refuse), over HTTP and gRPC; an ack keeps it tripped;
 * an override serves normally for its bounded time, audited, and expires by itself with nobody
 * writing; a release clears it; a server started while a gate is tripped serves the trip at once.
 */
import * as grpc from "@grpc/grpc-js";
import { createKafka, GatePublisher } from "@tessera/kafka";
import { RedisOnlineStore } from "@tessera/stores";
import { parseDefinitionsYaml } from "@tessera/transforms";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kafkaBrokers, services, uniqueName } from "../../../test/support/index.js";
import {
  type FeatureServerHandle,
  featureServerConfig,
  hashKey,
  loadServiceDefinition,
  startFeatureServer,
} from "../src/index.js";
import { apiKeys, type Event, KEYS, writeTiles } from "./fixtures.js";

const defs = parseDefinitionsYaml(`
sources:
  - { name: tx, topic: gate.tx, entity: card_id, timestamp: ts }
views:
  - name: scored
    source: tx
    features: [{ name: n_1h, op: count, window: 1h, hop: 1m }]
  - name: strict
    source: tx
    gate: { onTrip: refuse }
    features: [{ name: n_1h, op: count, window: 1h, hop: 1m }]
  - name: free
    source: tx
    features: [{ name: n_1h, op: count, window: 1h, hop: 1m }]
models:
  - { name: fraud-v1, views: [scored], accuracyFloor: 0.9, gate: { onTrip: quarantine } }
`);

// biome-ignore lint/suspicious/noExplicitAny: a generic client's responses are untyped JSON
type Json = any;

const topic = uniqueName("tessera.gate");
const OPERATOR_KEY = "tk_oncall_0123456789abcdef0123456789ab";
const alice = (note: string) => ({ by: "alice@risk", at: Date.now(), note });

async function eventually<T>(
  probe: () => Promise<T>,
  ok: (value: T) => boolean,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (ok(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("quality gate on Kafka + Redis", () => {
  const now = Date.now();
  const kafka = createKafka({ brokers: kafkaBrokers(), clientId: "gate-int-test" });
  const publisher = new GatePublisher({ kafka, topic });
  const servers: FeatureServerHandle[] = [];
  let store: RedisOnlineStore;
  let server: FeatureServerHandle;

  const start = async () => {
    const started = await startFeatureServer(
      featureServerConfig({
        http: { port: 0 },
        grpc: { port: 0 },
        reliability: { maxEventLoopDelayMs: 0, storeTimeoutMs: 5000, retryAfterSeconds: 9 },
        gate: { follow: true, topic },
      }),
      {
        store,
        definitions: defs,
        apiKeys: [
          ...apiKeys(),
          { id: "risk-oncall", sha256: hashKey(OPERATOR_KEY), views: ["*"], rights: ["gate"] },
        ],
        logger: pino({ level: "silent" }),
        env: { KAFKA_BROKERS: services().KAFKA_BROKERS },
      },
    );
    servers.push(started);
    return started;
  };
  const post = async (target: FeatureServerHandle, features: string[]) => {
    const res = await fetch(`${target.url}/v1/features`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": KEYS.all },
      body: JSON.stringify({ features, entities: { card_id: ["card-1"] } }),
    });
    return {
      status: res.status,
      retryAfter: res.headers.get("retry-after"),
      body: (await res.json()) as Json,
    };
  };
  const statuses = async (target: FeatureServerHandle, features = ["scored:n_1h", "free:n_1h"]) =>
    (await post(target, features)).body.entities?.card_id.results[0].statuses as string[];
  const Client = grpc.makeGenericClientConstructor(loadServiceDefinition(), "FeatureService");
  const call = (target: FeatureServerHandle, features: string[]) =>
    new Promise<{ error: grpc.ServiceError | null; response: Json }>((resolve) => {
      const client = new Client(`127.0.0.1:${target.grpcPort}`, grpc.credentials.createInsecure());
      const metadata = new grpc.Metadata();
      metadata.set("x-api-key", KEYS.all);
      (client as Json).GetOnlineFeatures(
        { features, entities: { card_id: { ids: ["card-1"] } } },
        metadata,
        (error: grpc.ServiceError | null, response: unknown) => {
          client.close();
          resolve({ error, response });
        },
      );
    });
  const topicEnd = async () => {
    const admin = kafka.admin();
    await admin.connect();
    const ends = await admin.fetchTopicOffsets(topic);
    await admin.disconnect();
    return ends.reduce((n, e) => n + Number(e.high), 0);
  };

  beforeAll(async () => {
    store = new RedisOnlineStore({
      url: services().REDIS_URL,
      keyPrefix: `${uniqueName("gate")}:`,
      timeoutMs: 2000,
    });
    const event: Event = { card_id: "card-1", merchant_id: "m", ts: now - 60_000, amount: 1, country: "FR" };
    await writeTiles(store, defs, [event], now);
    await publisher.start();
    server = await start();
  });
  afterAll(async () => {
    for (const s of servers) await s.stop();
    await publisher.stop();
    await store?.close();
  });

  it("serves normally while no gate has tripped", async () => {
    expect(await statuses(server)).toEqual(["present", "present"]);
    expect((await post(server, ["strict:n_1h"])).status).toBe(200);
  });

  it("a model gate tripped on the topic → its views quarantined over HTTP and gRPC, others untouched", async () => {
    await publisher.observe("model:fraud-v1", {
      cause: "accuracy_floor",
      active: true,
      at: Date.now(),
      by: "drift-worker",
      incident: "acc-fraud-v1-1",
    });
    expect(
      await eventually(
        () => statuses(server),
        (s) => s?.[0] === "quarantined",
      ),
    ).toEqual(["quarantined", "present"]);
    const { body } = await post(server, ["scored:n_1h", "free:n_1h"]);
    expect(body.entities.card_id.results[0].values).toEqual([1, 1]); // served, but marked
    expect(body.views.scored).toMatchObject({
      degraded: true,
      reasons: [{ code: "quality_gate", subject: "model:fraud-v1" }],
      gates: [
        {
          subject: "model:fraud-v1",
          state: "tripped",
          causes: ["accuracy_floor"],
          onTrip: "quarantine",
          incident: "acc-fraud-v1-1",
        },
      ],
    });
    expect(body.views.free).toMatchObject({ degraded: false, reasons: [] });
    expect(body.views.free.gates).toBeUndefined();

    const { error, response } = await call(server, ["scored:n_1h", "free:n_1h"]);
    expect(error).toBeNull();
    expect(response.results[0].features["scored:n_1h"].status).toBe("QUARANTINED");
    expect(response.results[0].features["free:n_1h"].status).toBe("PRESENT");
    expect(response.view_status.scored.reasons[0]).toMatchObject({
      code: "quality_gate",
      subject: "model:fraud-v1",
    });
    expect(response.view_status.scored.gates[0]).toMatchObject({
      subject: "model:fraud-v1",
      state: "tripped",
      on_trip: "quarantine",
    });
  });

  it("a view gate whose policy is refuse → 503 with Retry-After and reason, UNAVAILABLE with trailers", async () => {
    await publisher.observe("view:strict", {
      cause: "drift_critical",
      active: true,
      at: Date.now(),
      by: "drift-worker",
    });
    const refused = await eventually(
      () => post(server, ["strict:n_1h"]),
      (r) => r.status === 503,
    );
    expect(refused.status).toBe(503);
    expect(refused.retryAfter).toBe("9");
    expect(refused.body).toMatchObject({ error: "unavailable", reason: "quality_gate", view: "strict" });
    expect(refused.body.message).toMatch(/quality gate view:strict is tripped .*drift_critical/);
    const { error } = await call(server, ["strict:n_1h"]);
    expect(error?.code).toBe(grpc.status.UNAVAILABLE);
    expect(error?.metadata.get("reason")).toEqual(["quality_gate"]);
    expect(error?.metadata.get("view")).toEqual(["strict"]);
    expect(error?.metadata.get("retry-after")).toEqual(["9"]);
  });

  it("a feature server started while gates are tripped serves them from its first request", async () => {
    const fresh = await start();
    const ready = await fetch(`${fresh.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await statuses(fresh)).toEqual(["quarantined", "present"]);
    expect((await post(fresh, ["strict:n_1h"])).body).toMatchObject({
      reason: "quality_gate",
      view: "strict",
    });
  });

  it("ack keeps the gate tripped (still quarantined), audited", async () => {
    await publisher.ack("model:fraud-v1", alice("on it: labels look delayed"));
    const { body } = await eventually(
      () => post(server, ["scored:n_1h"]),
      (r) => r.body.views?.scored?.gates?.[0]?.state === "acked",
    );
    expect(body.views.scored.gates[0].state).toBe("acked");
    expect(body.entities.card_id.results[0].statuses).toEqual(["quarantined"]);
  });

  it("override serves normally for its bounded time, audited, then expires by itself (nobody writes)", async () => {
    const state = await publisher.override("model:fraud-v1", {
      ...alice("retrain deployed, watching"),
      forMs: 4000,
    });
    const audit = state.log.at(-1)!;
    expect(audit).toMatchObject({ action: "override", by: "alice@risk", note: "retrain deployed, watching" });
    expect(audit.until! - audit.at).toBe(4000);
    const during = await eventually(
      () => post(server, ["scored:n_1h"]),
      (r) => r.body.views?.scored?.gates?.[0]?.state === "overridden",
    );
    expect(during.body.entities.card_id.results[0].statuses).toEqual(["present"]);
    expect(during.body.views.scored).toMatchObject({ degraded: false, reasons: [] });
    expect(during.body.views.scored.gates[0].overrideUntil).toBe(state.overrideUntil);
    const writes = await topicEnd();
    await new Promise((r) => setTimeout(r, Math.max(0, state.overrideUntil! - Date.now()) + 50));
    for (const target of servers) {
      const after = await post(target, ["scored:n_1h"]);
      expect(after.body.entities.card_id.results[0].statuses).toEqual(["quarantined"]);
      expect(after.body.views.scored.gates[0].state).toBe("acked");
    }
    expect(await topicEnd()).toBe(writes);
  });

  it("release clears the gate (ok, then a tombstone) on every server", async () => {
    const before = await topicEnd();
    await publisher.release("model:fraud-v1", alice("accuracy back over the floor"));
    await publisher.release("view:strict", alice("drift was a replayed batch"));
    expect(await topicEnd()).toBe(before + 4);
    for (const target of servers) {
      expect(
        await eventually(
          () => statuses(target),
          (s) => s?.[0] === "present",
        ),
      ).toEqual(["present", "present"]);
      const { status, body } = await post(target, ["scored:n_1h", "strict:n_1h"]);
      expect(status).toBe(200);
      expect(body.views.scored.gates).toBeUndefined();
    }
  });

  it("the operator API: gates listed per the caller's views; acting needs the gate right and records the caller", async () => {
    await publisher.observe("model:fraud-v1", {
      cause: "accuracy_floor",
      active: true,
      at: Date.now(),
      by: "drift-worker",
      note: "accuracy 0.81 under floor 0.9",
    });
    const api = async (path: string, key: string | undefined, body?: object) => {
      const res = await fetch(`${server.url}${path}`, {
        method: body ? "POST" : "GET",
        headers: {
          ...(body ? { "content-type": "application/json" } : {}),
          ...(key ? { "x-api-key": key } : {}),
        },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      return { status: res.status, body: (await res.json()) as Json };
    };
    const listed = await eventually(
      () => api("/v1/gates", KEYS.all),
      (r) => r.body.gates?.some((g: Json) => g.subject === "model:fraud-v1"),
    );
    expect(listed.body.gates).toEqual([
      expect.objectContaining({ subject: "model:fraud-v1", state: "tripped" }),
    ]);
    // A key that may not read the model's view does not see its gate.
    expect((await api("/v1/gates", KEYS.cardOnly)).body.gates).toEqual([]);

    const ack = "/v1/gates/model:fraud-v1/ack";
    expect((await api(ack, undefined, { reason: "x" })).status).toBe(401);
    const noRight = await api(ack, KEYS.all, { reason: "x" });
    expect([noRight.status, noRight.body.field]).toEqual([403, "x-api-key"]);
    const noReason = await api(ack, OPERATOR_KEY, {});
    expect([noReason.status, noReason.body.field]).toEqual([400, "reason"]);
    const notTripped = await api("/v1/gates/view:free/ack", OPERATOR_KEY, { reason: "x" });
    expect([notTripped.status, notTripped.body.field]).toEqual([400, "subject"]);
    const badSubject = await api("/v1/gates/fraud-v1/ack", OPERATOR_KEY, { reason: "x" });
    expect([badSubject.status, badSubject.body.field]).toEqual([400, "subject"]);

    const acked = await api(ack, OPERATOR_KEY, { reason: "labels delayed, checking" });
    expect(acked.status).toBe(200);
    expect(acked.body).toMatchObject({ state: "acked", by: "risk-oncall" });
    expect(acked.body.log.at(-1)).toMatchObject({
      action: "ack",
      by: "risk-oncall",
      note: "labels delayed, checking",
    });

    const badFor = await api("/v1/gates/model:fraud-v1/override", OPERATOR_KEY, { reason: "x", for: "soon" });
    expect([badFor.status, badFor.body.field]).toEqual([400, "for"]);
    const overridden = await api("/v1/gates/model:fraud-v1/override", OPERATOR_KEY, {
      reason: "retrain deployed",
      for: "60s",
    });
    expect(overridden.body).toMatchObject({ state: "overridden", by: "risk-oncall" });
    expect(overridden.body.overrideUntil - overridden.body.at).toBe(60_000);
    expect(
      await eventually(
        () => statuses(server, ["scored:n_1h"]),
        (st) => st?.[0] === "present",
      ),
    ).toEqual(["present"]);

    const released = await api("/v1/gates/model:fraud-v1/release", OPERATOR_KEY, { reason: "accuracy back" });
    expect(released.body).toMatchObject({ state: "ok", by: "risk-oncall" });
    expect(
      (
        await eventually(
          () => api("/v1/gates", KEYS.all),
          (r) => r.body.gates?.length === 0,
        )
      ).body.gates,
    ).toEqual([]);
    // What the topic recorded is what every follower reads: the test's own publisher, a follower of
    // its own, sees the same release once the tombstone reaches it (CI saw it read one poll early).
    expect(
      await eventually(
        async () => publisher.status("model:fraud-v1"),
        (gates) => gates.length === 0,
      ),
    ).toEqual([]);
  });
});

/**
 * The drift worker trips and clears quality gates on the gate topic (here the in-memory bus):
 * critical drift on a view, a model under its accuracy floor, a view past its freshness SLA; and
 * an acknowledged gate is not paged again.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type DriftAlertRecord, GateFollower, GatePublisher, MemoryBroker } from "@tessera/kafka";
import { createLogger } from "@tessera/runtime";
import { validateDefinitions } from "@tessera/transforms";
import { afterEach, describe, expect, it } from "vitest";
import { CallbackSink, defaultConfig, ownerLabels, startDriftWorker } from "../src/index.js";
import { Generator, referenceProfile } from "./scenario.js";

const topic = "tessera.gate";
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** A worker in push mode on a clock the test moves, publishing gates on a memory broker. */
async function setup(
  options: { definitions?: ReturnType<typeof validateDefinitions>; webhook?: string } = {},
) {
  const broker = new MemoryBroker();
  const kafka = broker.client();
  const publisher = new GatePublisher({
    kafka,
    topic,
    gate: { clearAfterMs: 60_000, maxOverrideMs: 3_600_000 },
  });
  await publisher.start();
  cleanup.push(() => publisher.stop());
  // A follower of its own: what a feature server would see on the topic.
  const follower = new GateFollower({ kafka, topic });
  await follower.start();
  await follower.caughtUp;
  cleanup.push(() => follower.stop());
  const clock = { now: Date.now() };
  const alerts: DriftAlertRecord[] = [];
  const worker = await startDriftWorker(
    defaultConfig({
      hysteresis: { resolveAfter: 1, coolDownMs: 0 },
      ...(options.webhook ? { webhook: { url: options.webhook, retries: 0 } } : {}),
    }),
    {
      input: "push",
      profile: referenceProfile(),
      sinks: [new CallbackSink("memory", (a) => void alerts.push(a))],
      http: false,
      schedule: false,
      gatePublisher: publisher,
      definitions: options.definitions,
      now: () => clock.now,
      logger: createLogger("drift-worker", "warn"),
    },
  );
  cleanup.push(() => worker.stop());
  const generator = new Generator(4, clock.now);
  const feed = (n: number, incidents: Parameters<Generator["next"]>[0] = {}) => {
    for (let i = 0; i < n; i++) {
      const e = generator.next(incidents);
      worker.ingest.featureUpdate(e.update);
      for (const p of e.predictions) worker.ingest.prediction(p);
      worker.ingest.label(e.label);
    }
  };
  /** The follower's view once it has caught up with the publisher's latest write. */
  const seen = async (subject: string) => {
    const want = JSON.stringify(publisher.status(subject)[0]);
    for (
      let i = 0;
      i < 200 && JSON.stringify(follower.all().find((s) => s.subject === subject)) !== want;
      i++
    )
      await new Promise((r) => setTimeout(r, 5));
    return follower.get(subject);
  };
  return { worker, publisher, clock, alerts, feed, seen };
}

/** An Alertmanager stand-in: keeps every body posted to it. */
async function receiver() {
  const bodies: Array<Array<{ labels: Record<string, string> }>> = [];
  const server: Server = createServer((request, response) => {
    let text = "";
    request.on("data", (c) => {
      text += c;
    });
    request.on("end", () => {
      bodies.push(JSON.parse(text));
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanup.push(() => new Promise((r) => server.closeAllConnections() ?? server.close(r)));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v2/alerts`, bodies };
}

const owned = validateDefinitions({
  sources: [
    {
      name: "tx",
      topic: "payments.transactions",
      entity: "card",
      timestamp: "ts",
      owner: "ingest",
      onCall: { labels: { tier: "2" } },
    },
  ],
  views: [
    {
      name: "payments",
      source: "tx",
      features: [{ name: "n", op: "count", window: "1h" }],
      owner: "payments-risk",
      onCall: { receiver: "payments-pager", labels: { tier: "1" } },
    },
  ],
  models: [{ name: "churn", views: ["payments"], owner: "growth-ml" }],
});

describe("drift worker → quality gate", () => {
  it("a critical incident trips the view's gate; once it resolves the gate clears after the hysteresis", async () => {
    const { worker, clock, alerts, feed, seen } = await setup();
    feed(1000, { meanShift: true });
    await worker.evaluate();
    await worker.flushAlerts();
    const firing = alerts.find((a) => a.status === "FIRING" && a.subject === "payments:amount_mean")!;
    expect(firing.severity).toBe("CRITICAL");
    expect(await seen("view:payments")).toMatchObject({
      state: "tripped",
      causes: ["drift_critical"],
      incident: firing.alert_id,
      by: "drift-worker",
    });
    // The models are fine (churn's accuracy is above the configured floor): no gate for them.
    expect(await seen("model:churn")).toBeUndefined();

    const tripped = clock.now;
    clock.now += 1000;
    feed(1000); // a clear window: the incident resolves (resolveAfter 1, no cool-down)
    await worker.evaluate();
    await worker.flushAlerts();
    expect(alerts.map((a) => `${a.status} ${a.subject}`)).toContain("RESOLVED payments:amount_mean");
    expect(await seen("view:payments")).toMatchObject({
      state: "tripped",
      causes: [],
      clearingSince: clock.now,
    });

    clock.now = tripped + 1000 + 59_000; // every cause clear for 59 s: still tripped
    await worker.evaluate();
    expect((await seen("view:payments"))?.state).toBe("tripped");
    clock.now = tripped + 1000 + 60_000;
    await worker.evaluate();
    expect(await seen("view:payments")).toMatchObject({ state: "ok", causes: [] });
  });

  it("the definitions' accuracy floor trips the model's gate and their freshness SLA the view's", async () => {
    const definitions = validateDefinitions({
      sources: [{ name: "tx", topic: "payments.transactions", entity: "card", timestamp: "ts" }],
      views: [
        {
          name: "payments",
          source: "tx",
          features: [{ name: "n", op: "count", window: "1h" }],
          freshness: { maxAge: "5m" },
        },
      ],
      // churn's accuracy is about 0.9: under this floor, above the worker's own (0.7).
      models: [{ name: "churn", views: ["payments"], accuracyFloor: 0.95 }],
    });
    const { worker, clock, feed, seen } = await setup({ definitions });
    feed(1000);
    await worker.evaluate();
    expect(await seen("model:churn")).toMatchObject({ state: "tripped", causes: ["accuracy_floor"] });
    expect((await seen("model:churn"))!.note).toMatch(/^accuracy 0\.\d+ under floor 0\.95$/);
    expect(await seen("view:payments")).toBeUndefined(); // fresh: the last event is 1 s old

    clock.now += 5 * 60_000 + 1000; // nothing new for longer than the SLA
    await worker.evaluate();
    expect(await seen("view:payments")).toMatchObject({ state: "tripped", causes: ["freshness_sla"] });
  });

  it("an acknowledged gate is not paged again: a new FIRING on its view skips the webhook only", async () => {
    const { url, bodies } = await receiver();
    const { worker, publisher, clock, alerts, feed } = await setup({ webhook: url });
    const subjects = () => bodies.map((b) => b[0]!.labels["subject"]);

    feed(1000, { meanShift: true });
    await worker.evaluate();
    await worker.flushAlerts();
    expect(subjects()).toEqual(["payments:amount_mean"]);
    await publisher.ack("view:payments", { by: "alice", at: clock.now, note: "on it" });

    clock.now += 1000;
    feed(1000, { meanShift: true, varianceChange: true }); // a second incident on the same view
    await worker.evaluate();
    await worker.flushAlerts();
    expect(alerts.filter((a) => a.status === "FIRING").map((a) => a.subject)).toEqual([
      "payments:amount_mean",
      "payments:amount_std",
    ]);
    expect(subjects()).toEqual(["payments:amount_mean"]); // the pager heard nothing new
    expect(publisher.status("view:payments")[0]?.state).toBe("acked");
  });
});

describe("owner labels", () => {
  it("webhook alerts carry the team and on-call route of their subject's view, firing and resolved", async () => {
    const { url, bodies } = await receiver();
    const { worker, clock, feed } = await setup({ webhook: url, definitions: owned });
    feed(1000, { meanShift: true });
    await worker.evaluate();
    clock.now += 1000;
    feed(1000);
    await worker.evaluate();
    await worker.flushAlerts();
    const mean = bodies.map((b) => b[0]!.labels).filter((l) => l["subject"] === "payments:amount_mean");
    expect(mean).toHaveLength(2); // FIRING, RESOLVED: the same labels, so Alertmanager pairs them
    for (const labels of mean)
      expect(labels).toMatchObject({
        alertname: "TesseraFeatureDrift",
        team: "payments-risk",
        oncall: "payments-pager",
        tier: "1",
      });
  });

  it("a model's alerts are its owner's, a topic's freshness the source's; unknown subjects get none", () => {
    expect(ownerLabels(owned, { kind: "ACCURACY", subject: "churn" })).toEqual({ team: "growth-ml" });
    expect(ownerLabels(owned, { kind: "PREDICTION_DRIFT", subject: "churn:class" })).toEqual({
      team: "growth-ml",
    });
    expect(
      ownerLabels(owned, { kind: "FRESHNESS", subject: "tessera-processor-payments/payments.transactions" }),
    ).toEqual({ team: "ingest", tier: "2" });
    expect(ownerLabels(owned, { kind: "FRESHNESS", subject: "tessera.features" })).toEqual({});
    // A view past its freshness SLA belongs to the view.
    expect(ownerLabels(owned, { kind: "FRESHNESS", subject: "view:payments" })).toEqual(
      ownerLabels(owned, { kind: "FEATURE_DRIFT", subject: "payments:x" }),
    );
    expect(ownerLabels(owned, { kind: "FEATURE_DRIFT", subject: "other:x" })).toEqual({});
  });
});

/**
 * The embedded demo runs the worker on the in-memory bus: state is kept there too, and a second
 * worker on the same bus continues the first one's open incident.
 */
import { type DriftAlertRecord, ensureTopics, MemoryBroker, SchemaRegistry } from "@tessera/kafka";
import { createLogger } from "@tessera/runtime";
import { describe, expect, it } from "vitest";
import { defaultConfig, startDriftWorker } from "../src/index.js";
import { Generator, referenceProfile } from "./scenario.js";

describe("state on the in-memory bus", () => {
  it("a worker restarted on the same bus keeps the open incident and resolves it once", async () => {
    const kafka = new MemoryBroker().client();
    const registry = SchemaRegistry.inMemory();
    const profile = referenceProfile();
    const config = defaultConfig({
      http: { port: 0 },
      hysteresis: { coolDownMs: 0, resolveAfter: 1 },
      freshness: { warnSeconds: 1e9, criticalSeconds: 1e9 },
    });
    const { features, predictions, labels } = config.topics;
    await ensureTopics(
      kafka,
      [features, predictions, labels].map((topic) => ({ topic, partitions: 1 })),
    );
    const alerts: DriftAlertRecord[] = [];
    const start = () =>
      startDriftWorker(config, {
        profile,
        kafka,
        registry,
        http: false,
        schedule: false,
        publishAlerts: false,
        logger: createLogger("drift-worker-test", "warn"),
        sinks: [{ name: "test", send: async (a) => void alerts.push(a) }],
      });
    const generator = new Generator(4);
    const first = await start();
    for (let i = 0; i < 1000; i++) first.ingest.featureUpdate(generator.next({ newCategory: true }).update);
    await first.evaluate();
    await first.flushAlerts();
    expect(alerts.map((a) => [a.status, a.subject])).toEqual([["FIRING", "payments:country"]]);
    await first.stop();

    const second = await start();
    expect(second.status().state!.restoredRecords).toBeGreaterThan(0);
    expect(second.monitor.activeAlerts().map((a) => a.alert_id)).toEqual([alerts[0]!.alert_id]);
    for (let i = 0; i < 1000; i++) second.ingest.featureUpdate(generator.next().update);
    await second.evaluate();
    await second.flushAlerts();
    await second.stop();
    expect(alerts.map((a) => [a.status, a.alert_id])).toEqual([
      ["FIRING", alerts[0]!.alert_id],
      ["RESOLVED", alerts[0]!.alert_id],
    ]);
  });
});

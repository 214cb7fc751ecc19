/**
 * GET /v1/lineage over the example definitions: model → views@version (serving since) → topic →
 * schema subject@version → archive, reference profile; 400 naming the field, 403 outside the key's
 * views. With `registry`, the subject is registered first and its version must come back.
 */
import { readFileSync } from "node:fs";
import { SchemaRegistry } from "@tessera/kafka";
import { MemoryOnlineStore } from "@tessera/stores";
import { parseDefinitionsYaml } from "@tessera/transforms";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FeatureServerHandle, featureServerConfig, startFeatureServer } from "../src/index.js";
import { apiKeys, KEYS } from "./fixtures.js";

const yaml = readFileSync(new URL("../../../examples/payments/features.yaml", import.meta.url), "utf8");

export function lineageSuite(registryUrl?: string, subject = "payments.transactions-value"): void {
  describe(`GET /v1/lineage (${registryUrl ? "real schema registry" : "no registry"})`, () => {
    const defs = parseDefinitionsYaml(yaml.replace("payments.transactions-value", subject));
    let server: FeatureServerHandle;
    let registered: number | undefined;
    const started = Date.now();
    const get = async (query: string, key = KEYS.all) => {
      const res = await fetch(`${server.url}/v1/lineage?${query}`, { headers: { "x-api-key": key } });
      // biome-ignore lint/suspicious/noExplicitAny: JSON answers, checked field by field below
      return { status: res.status, body: (await res.json()) as Record<string, any> };
    };
    beforeAll(async () => {
      if (registryUrl) {
        const schema = { type: "record", name: "T", fields: [{ name: "card_id", type: "string" }] };
        await new SchemaRegistry(registryUrl).register(subject, schema);
        registered = (await new SchemaRegistry(registryUrl).latest(subject)).version;
      }
      server = await startFeatureServer(
        featureServerConfig({
          http: { port: 0 },
          grpc: { enabled: false },
          reliability: { maxEventLoopDelayMs: 0 },
        }),
        {
          store: new MemoryOnlineStore(),
          definitions: defs,
          apiKeys: apiKeys(),
          logger: pino({ level: "silent" }),
          env: registryUrl ? { SCHEMA_REGISTRY_URL: registryUrl } : {},
        },
      );
    });
    afterAll(() => server?.stop());

    it("answers model → views@version → topic → schema@version → archive and the reference profile in one call", async () => {
      const { status, body } = await get("model=fraud-v1");
      expect(status).toBe(200);
      expect(body["kind"]).toBe("model");
      expect(body["model"]).toMatchObject({
        name: "fraud-v1",
        owner: "fraud-ml",
        accuracyFloor: 0.9,
        aucFloor: 0.85,
        reference: "reference.json",
      });
      const view = body["views"][0];
      expect(view).toMatchObject({
        name: "card_activity",
        version: defs.views[0]!.version,
        owner: "risk-features",
        freshness: { maxAgeMs: 300_000, onStale: "serve", from: "view" },
        source: {
          name: "transactions",
          topic: "payments.transactions",
          owner: "payments-platform",
          schema: { subject, compatibility: "BACKWARD", version: registryUrl ? registered : null },
          archive: "archive/payments.transactions",
        },
      });
      expect(registryUrl === undefined || typeof registered === "number").toBe(true);
      expect(view.servingSince).toBeGreaterThanOrEqual(started);
      expect(view.servingSince).toBeLessThanOrEqual(Date.now());
    });

    it("answers a view too, and refuses what it does not serve or the key may not read", async () => {
      const view = await get("view=card_activity");
      expect(view.status).toBe(200);
      expect(view.body["kind"]).toBe("view");
      expect(view.body["model"]).toBeNull();
      expect(await get("model=nope")).toMatchObject({ status: 400, body: { field: "model" } });
      expect(await get("model=fraud-v1&view=card_activity")).toMatchObject({
        status: 400,
        body: { field: "querystring" },
      });
      expect(await get("owner=x")).toMatchObject({ status: 400 });
      expect((await get("model=fraud-v1", KEYS.cardOnly)).status).toBe(403);
    });
  });
}

/**
 * Property: for any event stream and any `at` the server accepts, the served vector equals the batch
 * (point-in-time) evaluator's at that `at`, and the status says whether any tile lies in the window.
 */
import { MemoryOnlineStore } from "@tessera/stores";
import fc from "fast-check";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { type FeatureResponse, featureServerConfig, startFeatureServer } from "../src/index.js";
import { apiKeys, definitions, type Event, KEYS, oracle, writeTiles } from "./fixtures.js";

const HOUR = 3_600_000;
const defs = definitions();

// Events in the day before the test started: all before any request time, all within retention.
const base = Date.now();
const eventArb = fc.record({
  card_id: fc.constantFrom("a", "b", "c"),
  merchant_id: fc.constant("m"),
  ts: fc.integer({ min: base - 24 * HOUR, max: base - 1 }),
  amount: fc.option(fc.double({ min: -1000, max: 1000, noNaN: true }), { nil: null }),
  country: fc.constantFrom("US", "FR", "JP"),
});

describe("served values = batch evaluator (property)", () => {
  it("holds for random streams and random `at`", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(eventArb, { maxLength: 60 }),
        // How far past the request's clock to evaluate; beyond the retention (25 h) it must be refused.
        fc.integer({ min: 0, max: 26 * HOUR }),
        async (rows, ahead) => {
          const store = new MemoryOnlineStore();
          await writeTiles(store, defs, rows as Event[], Date.now());
          const server = await startFeatureServer(
            featureServerConfig({
              http: { port: 0 },
              grpc: { enabled: false },
              reliability: { maxEventLoopDelayMs: 0 },
            }),
            { store, definitions: defs, apiKeys: apiKeys(), logger: pino({ level: "silent" }) },
          );
          try {
            const at = Date.now() + ahead;
            const res = await fetch(`${server.url}/v1/features`, {
              method: "POST",
              headers: { "content-type": "application/json", "x-api-key": KEYS.all },
              body: JSON.stringify({
                features: ["card:*"],
                entities: { card_id: ["a", "b", "c"] },
                at,
                context: { amount: 1 },
              }),
            });
            const body = (await res.json()) as FeatureResponse;
            if (ahead > defs.views[0]!.retentionMs) {
              expect(res.status).toBe(400); // beyond now + retention: refused, naming `at`
              return;
            }
            expect(res.status).toBe(200);
            const group = body.entities["card_id"]!;
            for (const row of group.results) {
              const expected = oracle(defs, "card", rows as Event[], row.id, at);
              group.features.forEach((name, c) => {
                const feature = name.slice("card:".length);
                if (!(feature in expected)) return;
                const want = expected[feature];
                if (typeof want === "number") expect(row.values[c] as number).toBeCloseTo(want, 6);
                // JSON has no −0 (a list holding −0 arrives as 0): compare with what the wire can say.
                else expect(row.values[c]).toEqual(JSON.parse(JSON.stringify(want)));
              });
              const f = defs.views[0]!.features.find((x) => x.name === "n_1h")!;
              const from = Math.floor((at - f.windowMs) / f.hopMs) * f.hopMs;
              const inWindow = rows.some((r) => r.card_id === row.id && r.ts >= from && r.ts < at);
              expect(row.statuses[0]).toBe(inWindow ? "present" : "missing");
            }
          } finally {
            await server.stop();
          }
        },
      ),
      {
        numRuns: 25,
        // Found by CI: an amount of −0 (a list feature holds it; JSON serves it as 0).
        examples: [[[{ card_id: "a", merchant_id: "m", ts: base - 1, amount: -0, country: "US" }], 0]],
      },
    );
  }, 120_000);
});

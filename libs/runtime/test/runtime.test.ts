import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Counter, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { ConfigError, envName, loadConfig, startOpsServer } from "../src/index.js";

const schema = {
  type: "object",
  additionalProperties: false,
  properties: {
    flush: {
      type: "object",
      additionalProperties: false,
      properties: {
        everyEvents: { type: "integer", minimum: 1, default: 5000 },
        everyMs: { type: "integer", minimum: 1, default: 500 },
      },
      default: {},
    },
    topics: { type: "array", items: { type: "string" }, default: ["payments"] },
    store: { type: "string", enum: ["redis", "cassandra", "memory"], default: "memory" },
  },
};

interface Config {
  flush: { everyEvents: number; everyMs: number };
  topics: string[];
  store: string;
}

describe("loadConfig", () => {
  it("fills defaults", () => {
    expect(loadConfig<Config>({ schema, envPrefix: "T", env: {} })).toEqual({
      flush: { everyEvents: 5000, everyMs: 500 },
      topics: ["payments"],
      store: "memory",
    });
  });

  it("derives env names from the schema path", () => {
    expect(envName("TESSERA_PROCESSOR", ["flush", "everyEvents"])).toBe(
      "TESSERA_PROCESSOR_FLUSH_EVERY_EVENTS",
    );
  });

  it("layers file < env < overrides and coerces env strings", () => {
    const dir = mkdtempSync(join(tmpdir(), "cfg-"));
    const file = join(dir, "c.yaml");
    writeFileSync(file, "flush:\n  everyEvents: 100\n  everyMs: 50\nstore: redis\n");
    const config = loadConfig<Config>({
      schema,
      envPrefix: "T",
      file,
      env: { T_FLUSH_EVERY_MS: "75", T_TOPICS: "a, b" },
      overrides: { store: "cassandra" },
    });
    expect(config).toEqual({
      flush: { everyEvents: 100, everyMs: 75 },
      topics: ["a", "b"],
      store: "cassandra",
    });
  });

  it("names the field, the problem and where the value came from", () => {
    const attempt = () => loadConfig<Config>({ schema, envPrefix: "T", env: { T_FLUSH_EVERY_EVENTS: "-3" } });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow("flush.everyEvents: must be >= 1 (from T_FLUSH_EVERY_EVENTS)");
  });

  it("rejects unknown settings in a file, naming them", () => {
    const dir = mkdtempSync(join(tmpdir(), "cfg-"));
    const file = join(dir, "c.json");
    writeFileSync(file, JSON.stringify({ flush: { evryEvents: 1 } }));
    expect(() => loadConfig<Config>({ schema, envPrefix: "T", file, env: {} })).toThrow(
      /flush.evryEvents: is not a known setting/,
    );
  });

  it("says when the file is missing or unreadable", () => {
    expect(() =>
      loadConfig<Config>({ schema, envPrefix: "T", file: "/nonexistent/x.yaml", env: {} }),
    ).toThrow("config file /nonexistent/x.yaml: ENOENT");
  });
});

describe("startOpsServer", () => {
  it("serves metrics, liveness and readiness", async () => {
    const registry = new Registry();
    new Counter({ name: "demo_things_total", help: "things", registers: [registry] }).inc(3);
    let ready = false;
    const ops = await startOpsServer({
      port: 0,
      registry,
      defaultMetrics: false,
      readiness: () => ({ ready, detail: { lag: ready ? 0 : 1200 } }),
    });
    try {
      expect(await (await fetch(`${ops.url}/metrics`)).text()).toContain("demo_things_total 3");
      expect((await fetch(`${ops.url}/healthz`)).status).toBe(200);
      const notReady = await fetch(`${ops.url}/readyz`);
      expect(notReady.status).toBe(503);
      expect(await notReady.json()).toEqual({ status: "not ready", detail: { lag: 1200 } });
      ready = true;
      expect((await fetch(`${ops.url}/readyz`)).status).toBe(200);
    } finally {
      await ops.close();
    }
  });
});

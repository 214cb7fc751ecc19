import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DefinitionsLoadError, loadDefinitions } from "@tessera/runtime";
import { describe, expect, it } from "vitest";
import { ConfigError, loadProcessorConfig } from "../src/config.js";
import { selectViews } from "../src/definitions.js";

const problems = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error("no ConfigError");
};

describe("processor configuration", () => {
  it("fills defaults and reads TESSERA_PROCESSOR_* variables, coerced to the schema's types", () => {
    const config = loadProcessorConfig({
      env: {
        TESSERA_PROCESSOR_NAME: "payments",
        TESSERA_PROCESSOR_DEFINITIONS: "features.yaml",
        TESSERA_PROCESSOR_FLUSH_MAX_EVENTS: "250",
        TESSERA_PROCESSOR_VIEWS: "a, b",
        KAFKA_BROKERS: "k1:9092,k2:9092",
        REDIS_URL: "redis://r:6379",
      },
    });
    expect(config.flush).toEqual({
      maxEvents: 250,
      maxTiles: 200_000,
      maxDelayMs: 200,
      catchUpLag: 50_000,
      catchUpMaxDelayMs: 10_000,
    });
    expect(config.views).toEqual(["a", "b"]);
    expect(config.kafka.brokers).toEqual(["k1:9092", "k2:9092"]);
    expect(config.store).toMatchObject({ kind: "redis", redisUrl: "redis://r:6379" });
    expect(config.ops).toEqual({ host: "127.0.0.1", port: 9101 });
    expect(config.topics).toEqual({ deadLetter: "tessera.dead-letter", features: "tessera.features" });
  });

  it("names every bad field and where its value came from", () => {
    const dir = mkdtempSync(join(tmpdir(), "proc-config-"));
    const file = join(dir, "processor.yaml");
    writeFileSync(file, "name: ok\ndefinitions: f.yaml\nflush: { maxEvnts: 10 }\nstore: { kind: mongo }\n");
    const found = problems(() =>
      loadProcessorConfig({ file, env: { TESSERA_PROCESSOR_FLUSH_MAX_DELAY_MS: "soon" } }),
    );
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^flush\.maxEvnts: is not a known setting/),
        expect.stringMatching(
          /^store\.kind: must be equal to one of the allowed values \(from .*processor\.yaml\)/,
        ),
        expect.stringMatching(
          /^flush\.maxDelayMs: must be integer \(from TESSERA_PROCESSOR_FLUSH_MAX_DELAY_MS\)/,
        ),
      ]),
    );
  });

  it("requires a name and a definitions file", () => {
    const found = problems(() => loadProcessorConfig({ env: {} }));
    expect(found.join("\n")).toMatch(/name: must have required property/);
    expect(found.join("\n")).toMatch(/definitions: must have required property/);
  });
});

describe("definitions for the processor", () => {
  it("loads YAML, selects views, and refuses unknown view names", async () => {
    const dir = mkdtempSync(join(tmpdir(), "proc-defs-"));
    const file = join(dir, "f.yaml");
    writeFileSync(
      file,
      "sources:\n  - { name: s, topic: t, entity: id, timestamp: ts }\nviews:\n  - name: v\n    source: s\n    features:\n      - { name: n, op: count, window: 1h }\n",
    );
    const definitions = await loadDefinitions(file);
    expect(selectViews(definitions, []).map((v) => v.name)).toEqual(["v"]);
    expect(() => selectViews(definitions, ["w"])).toThrow(/views: w not in the definitions \(known: v\)/);
  });

  it("reports invalid definitions with their field paths", async () => {
    const dir = mkdtempSync(join(tmpdir(), "proc-defs-"));
    const file = join(dir, "bad.yaml");
    writeFileSync(file, "sources: []\nviews:\n  - { name: v, source: nowhere, features: [] }\n");
    await expect(loadDefinitions(file)).rejects.toThrow(DefinitionsLoadError);
    await expect(loadDefinitions(join(dir, "missing.yaml"))).rejects.toThrow(/ENOENT/);
    await expect(loadDefinitions(join(dir, "f.txt"))).rejects.toThrow(/must be \.yaml/);
  });
});

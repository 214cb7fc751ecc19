/**
 * The configuration the deployments ship (k8s/base/config for compose and dev, the prod overlay's
 * replacements) loaded by each service's own config loader and schema, exactly as the process
 * would at start; the definitions by the transform library; the API keys by the feature server;
 * the reference profile by the drift worker. Then the settings that must agree across services.
 */

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, loadConfig } from "@tessera/runtime";
import { parseDefinitionsYaml } from "@tessera/transforms";
import { describe, expect, it } from "vitest";
import { configSchema as archiverSchema } from "../../services/archiver/src/config.js";
import { configSchema as driftSchema, loadProfile } from "../../services/drift-worker/src/index.js";
import { hashKey, readKeysFile } from "../../services/feature-server/src/auth.js";
import { loadFeatureServerConfig } from "../../services/feature-server/src/config.js";
import { loadProcessorConfig } from "../../services/stream-processor/src/config.js";
import { type Doc, repoPath } from "./support.js";

const base = repoPath("k8s/base/config");
const prod = repoPath("k8s/overlays/prod/config");
/** In the container, /etc/tessera is the config directory. */
const local = (dir: string, path: string) => join(dir, path.replace(/^\/etc\/tessera\//, ""));

// Connection settings come from the environment in every deployment; none is required by a schema.
const env = {};
const loaders: Record<string, (file: string) => Doc> = {
  "stream-processor": (file) => loadProcessorConfig({ file, env }) as unknown as Doc,
  archiver: (file) => loadConfig<Doc>({ schema: archiverSchema, envPrefix: "TESSERA_ARCHIVER", file, env }),
  "feature-server": (file) => loadFeatureServerConfig({ file, env }) as unknown as Doc,
  "drift-worker": (file) =>
    loadConfig<Doc>({ schema: driftSchema, envPrefix: "TESSERA_DRIFT_WORKER", file, env }),
};
const listener: Record<string, string> = {
  "stream-processor": "ops",
  archiver: "ops",
  "feature-server": "http",
  "drift-worker": "http",
};
const configs = {
  base: Object.fromEntries(
    Object.entries(loaders).map(([name, load]) => [name, load(join(base, `${name}.yaml`))]),
  ),
  prod: {
    "stream-processor": loaders["stream-processor"]!(join(prod, "stream-processor.yaml")),
    "feature-server": loaders["feature-server"]!(join(prod, "feature-server.yaml")),
  },
};
const definitions = parseDefinitionsYaml(readFileSync(join(base, "definitions.yaml"), "utf8"));

describe("service configs", () => {
  it("every shipped config loads with its service's own schema (unknown keys and bad values fail there)", () => {
    // Loading happened above; here, what the services will run with.
    for (const [name, config] of Object.entries({ ...configs.base, ...configs.prod })) {
      expect(config[listener[name]!]["host"], name).toBe("0.0.0.0");
    }
    expect(configs.base["stream-processor"]!["store"]["kind"]).toBe("redis");
    expect(configs.prod["stream-processor"]["store"]).toMatchObject({
      kind: "cassandra",
      keyspace: "tessera",
    });
  });

  it("a misspelt key is refused by the same loader, naming the field", () => {
    const broken = join(repoPath("test/deploy/fixtures"), "processor-typo.yaml");
    expect(() => loaders["stream-processor"]!(broken)).toThrow(ConfigError);
    expect(() => loaders["stream-processor"]!(broken)).toThrow(/stor: is not a known setting/);
  });

  it("the definitions validate and every path a config names is a shipped file", () => {
    expect(definitions.views.map((v) => v.name)).toEqual(["card_activity", "card_geography"]);
    for (const [name, config] of Object.entries(configs.base)) {
      for (const path of [config["definitions"], config["reference"]?.["path"]].filter(Boolean)) {
        expect(() => readFileSync(local(base, path)), `${name}: ${path}`).not.toThrow();
      }
    }
  });

  it("the archiver archives every source topic, reading the sources' event-time field", () => {
    const archiver = configs.base["archiver"]!;
    expect([...archiver["topics"]].sort()).toEqual(
      [...new Set(definitions.sources.map((s) => s.topic))].sort(),
    );
    for (const source of definitions.sources) expect(archiver["timestampField"]).toBe(source.timestamp);
  });

  it("the drift worker watches the lag of the processor's and the archiver's consumer groups", () => {
    const groups = configs.base["drift-worker"]!["freshness"]["groups"] as Array<{
      group: string;
      topic: string;
    }>;
    const processorGroup = `tessera-processor-${configs.base["stream-processor"]!["name"]}`;
    for (const source of definitions.sources) {
      expect(groups).toContainEqual({ group: processorGroup, topic: source.topic });
      expect(groups).toContainEqual({ group: configs.base["archiver"]!["groupId"], topic: source.topic });
    }
  });

  it("the sample reference profile loads in the drift worker and covers every feature", async () => {
    const profile = await loadProfile(local(base, configs.base["drift-worker"]!["reference"]["path"]));
    const features = definitions.views.flatMap((v) => v.features.map((f) => `${v.name}__${f.name}`));
    expect(Object.keys(profile.features).sort()).toEqual(features.sort());
    expect(profile.rows).toBeGreaterThan(1000);
  });

  it("the development API key file is valid and holds the hash of the documented dev key", () => {
    const keys = readKeysFile(repoPath("k8s/overlays/dev/api-keys.yaml"));
    expect(keys).toEqual([{ id: "dev", sha256: hashKey("tessera-dev-key"), views: ["*"] }]);
    expect(configs.base["feature-server"]!["auth"]["keysFile"]).toBe("/etc/tessera-secrets/api-keys.yaml");
    expect(readFileSync(repoPath("docs/deploy.md"), "utf8")).toContain("tessera-dev-key");
  });

  it("compose's TESSERA_ONLINE_STORE reaches both services' store.kind through their env overrides", () => {
    const processor = loadProcessorConfig({
      file: join(base, "stream-processor.yaml"),
      env: { TESSERA_PROCESSOR_STORE_KIND: "cassandra" },
    });
    const server = loadFeatureServerConfig({
      file: join(base, "feature-server.yaml"),
      env: { TESSERA_FEATURE_SERVER_STORE_KIND: "cassandra" },
    });
    expect([processor.store.kind, server.store.kind]).toEqual(["cassandra", "cassandra"]);
    expect(processor.store.keyspace).toBe(server.store.keyspace);
  });

  it("prod's processor and feature server use the same Cassandra keyspace", () => {
    const [processor, server] = [configs.prod["stream-processor"], configs.prod["feature-server"]];
    expect(server["store"]["kind"]).toBe(processor["store"]["kind"]);
    expect(server["store"]["keyspace"]).toBe(processor["store"]["keyspace"]);
  });
});

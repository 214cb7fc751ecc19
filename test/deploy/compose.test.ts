/**
 * docker-compose.yml: valid against the Compose Specification schema (the JSON Schema `docker
 * compose config` enforces, vendored by check-jsonschema), plus the checks a schema cannot make:
 * every dependency exists and can become healthy, ports and images are sound, mounted files exist,
 * and each Tessera service listens where its health check and Prometheus look.
 */
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { envName } from "@tessera/runtime";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { type Doc, readYaml, repoPath, validateCompose } from "./support.js";

const composeFile = repoPath("docker-compose.yml");
const compose = readYaml(composeFile);
const services = compose["services"] as Record<string, Doc>;

/** Tessera programs and the config field that holds their HTTP listener. */
const tesseraServices: Record<string, { listener: string }> = {
  "stream-processor": { listener: "ops" },
  archiver: { listener: "ops" },
  "feature-server": { listener: "http" },
  "drift-worker": { listener: "http" },
};
const connectionVars = [
  "KAFKA_BROKERS",
  "SCHEMA_REGISTRY_URL",
  "REDIS_URL",
  "CASSANDRA_CONTACT_POINTS",
  "CASSANDRA_LOCAL_DC",
];

const dependsOn = (service: Doc): Record<string, { condition?: string }> => {
  const deps = service["depends_on"];
  if (!deps) return {};
  return Array.isArray(deps) ? Object.fromEntries(deps.map((d: string) => [d, {}])) : deps;
};

/** Bind-mount sources (relative to the compose file) and container targets of a service. */
function binds(service: Doc): Array<{ source: string; target: string }> {
  return ((service["volumes"] ?? []) as string[])
    .map((spec) => spec.split(":"))
    .filter(([source]) => source!.startsWith("."))
    .map(([source, target]) => ({ source: repoPath(source!), target: target! }));
}

/** The problems a schema cannot see. */
function composeProblems(doc: Doc): string[] {
  const problems: string[] = [];
  const all = doc["services"] as Record<string, Doc>;
  const published = new Map<string, string>();
  for (const [name, service] of Object.entries(all)) {
    for (const [target, { condition = "service_started" }] of Object.entries(dependsOn(service))) {
      const dep = all[target];
      if (!dep) {
        problems.push(`${name}: depends on ${target}, which is not a service`);
        continue;
      }
      if (condition === "service_healthy" && (!dep["healthcheck"] || dep["healthcheck"]["disable"])) {
        problems.push(`${name}: waits for ${target} to be healthy, but ${target} has no healthcheck`);
      }
      if (
        condition === "service_completed_successfully" &&
        ["always", "unless-stopped"].includes(dep["restart"])
      ) {
        problems.push(`${name}: waits for ${target} to complete, but ${target} restarts forever`);
      }
    }
    const image = service["image"] as string | undefined;
    if (!service["build"]) {
      const tag = image?.split("/").pop()?.split(":")[1];
      if (!tag || tag === "latest") problems.push(`${name}: image ${image} is not pinned to a version`);
    }
    for (const port of (service["ports"] ?? []) as string[]) {
      const parts = String(port).split(":");
      if (parts.length !== 3 || parts[0] !== "127.0.0.1") {
        problems.push(`${name}: port ${port} is published beyond 127.0.0.1`);
      }
      const hostPort = parts.at(-2)!;
      const owner = published.get(hostPort);
      if (owner) problems.push(`${name}: host port ${hostPort} is already published by ${owner}`);
      published.set(hostPort, name);
    }
    for (const volume of (service["volumes"] ?? []) as string[]) {
      const source = volume.split(":")[0]!;
      if (!source.startsWith(".") && !source.startsWith("/") && !(source in (doc["volumes"] ?? {}))) {
        problems.push(`${name}: named volume ${source} is not declared under volumes:`);
      }
    }
  }
  return problems;
}

/** Every string value of a config that is an absolute path. */
function absolutePaths(value: unknown): string[] {
  if (typeof value === "string") return value.startsWith("/") ? [value] : [];
  if (value && typeof value === "object") return Object.values(value).flatMap(absolutePaths);
  return [];
}

describe("docker-compose.yml", () => {
  it("is valid against the Compose Specification schema", () => {
    const verdict = validateCompose(composeFile);
    expect(verdict.errors).toEqual([]);
    expect(verdict.ok).toBe(true);
  });

  it("the schema check rejects a misspelt key and an unknown depends_on condition", () => {
    const broken = structuredClone(compose);
    broken["services"]["redis"]["healthchek"] = broken["services"]["redis"]["healthcheck"];
    broken["services"]["feature-server"]["depends_on"]["redis"]["condition"] = "service_up";
    const file = join(mkdtempSync(join(tmpdir(), "tessera-compose-")), "docker-compose.yml");
    writeFileSync(file, stringify(broken));
    const verdict = validateCompose(file);
    expect(verdict.ok).toBe(false);
    expect(verdict.errors.join("\n")).toContain("healthchek");
    expect(verdict.errors.join("\n")).toContain("service_up");
  });

  it("has sound dependencies, pinned images, local-only unique ports and declared volumes", () => {
    expect(composeProblems(compose)).toEqual([]);
  });

  it("the semantic check catches a missing dependency, a dependency without healthcheck and a port clash", () => {
    const broken = structuredClone(compose);
    broken["services"]["grafana"]["depends_on"]["promethues"] = { condition: "service_healthy" };
    delete broken["services"]["redis"]["healthcheck"];
    broken["services"]["grafana"]["ports"] = ["127.0.0.1:9090:3000"];
    broken["services"]["redis"]["image"] = "redis:latest";
    expect(composeProblems(broken)).toEqual(
      expect.arrayContaining([
        "grafana: depends on promethues, which is not a service",
        "stream-processor: waits for redis to be healthy, but redis has no healthcheck",
        "grafana: host port 9090 is already published by prometheus",
        "redis: image redis:latest is not pinned to a version",
      ]),
    );
  });

  it("runs Kafka, the schema registry, Redis, Cassandra, every Tessera service, Prometheus and Grafana", () => {
    expect(Object.keys(services)).toEqual(
      expect.arrayContaining([
        "kafka",
        "schema-registry",
        "redis",
        "cassandra",
        "tessera-init",
        ...Object.keys(tesseraServices),
        "prometheus",
        "grafana",
      ]),
    );
  });

  it("mounts only files that exist", () => {
    for (const [name, service] of Object.entries(services)) {
      for (const { source } of binds(service)) expect(existsSync(source), `${name}: ${source}`).toBe(true);
    }
  });

  it("creates topics and registers schemas before any Tessera service starts", () => {
    const init = services["tessera-init"]!;
    expect(init["command"].join(" ")).toMatch(/tessera topics create .*&& tessera schemas push/);
    expect(dependsOn(init)).toMatchObject({
      kafka: { condition: "service_healthy" },
      "schema-registry": { condition: "service_healthy" },
    });
    for (const name of Object.keys(tesseraServices)) {
      expect(dependsOn(services[name]!)["tessera-init"], name).toEqual({
        condition: "service_completed_successfully",
      });
    }
  });

  it("gives each Tessera service its config file, the connection variables, and checks the port it listens on", () => {
    for (const [name, { listener }] of Object.entries(tesseraServices)) {
      const service = services[name]!;
      expect(service["command"].slice(0, 2), name).toEqual([name, "--config"]);
      const configPath = service["command"][2] as string;
      const mount = binds(service).find(({ target }) => configPath.startsWith(`${target}/`));
      expect(mount, `${name}: ${configPath} is not under a bind mount`).toBeDefined();
      const config = readYaml(join(mount!.source, configPath.slice(mount!.target.length + 1)));
      const { host, port } = config[listener] as { host: string; port: number };
      // Inside a container, 127.0.0.1 would be unreachable from the published port and Prometheus.
      expect(host, `${name}: ${listener}.host`).toBe("0.0.0.0");
      expect(service["ports"], name).toContain(`127.0.0.1:${port}:${port}`);
      expect(service["healthcheck"]["test"].join(" "), name).toContain(`http://127.0.0.1:${port}/readyz`);
      expect(Object.keys(service["environment"]), name).toEqual(expect.arrayContaining(connectionVars));
    }
  });

  it("mounts every file a Tessera config names (definitions, API keys, reference profile)", () => {
    for (const name of Object.keys(tesseraServices)) {
      const service = services[name]!;
      const inContainer = (path: string) => {
        const mount = binds(service).find(({ target }) => path === target || path.startsWith(`${target}/`));
        return mount && join(mount.source, path.slice(mount.target.length));
      };
      const config = readYaml(inContainer(service["command"][2])!);
      for (const path of absolutePaths(config)) {
        if (path.startsWith("/var/lib/")) continue; // data directories are volumes, not files
        const local = inContainer(path);
        expect(local && existsSync(local), `${name}: ${path} is not a mounted file`).toBe(true);
      }
    }
  });

  it("switches the processor and the feature server to the same online store with one variable", () => {
    const selections = (
      [
        ["stream-processor", "TESSERA_PROCESSOR"],
        ["feature-server", "TESSERA_FEATURE_SERVER"],
      ] as const
    ).map(([name, prefix]) => {
      // The variable loadConfig reads for store.kind, set from TESSERA_ONLINE_STORE.
      const value = services[name]!["environment"][envName(prefix, ["store", "kind"])];
      expect(value, name).toMatch(/^\$\{TESSERA_ONLINE_STORE:-redis\}$/);
      const config = readYaml(repoPath("k8s/base/config", `${name}.yaml`));
      return { name, fileDefault: config["store"]["kind"] };
    });
    for (const { name, fileDefault } of selections) expect(fileDefault, name).toBe("redis");
  });

  it("points the connection variables at the services that provide them", () => {
    const env = services["stream-processor"]!["environment"] as Record<string, string>;
    const kafka = services["kafka"]!["environment"] as Record<string, string>;
    expect(kafka["KAFKA_ADVERTISED_LISTENERS"]).toContain(`://${env["KAFKA_BROKERS"]}`);
    // A KRaft cluster id is a base64url UUID: 16 bytes.
    expect(Buffer.from(kafka["CLUSTER_ID"]!, "base64url")).toHaveLength(16);
    const registry = services["schema-registry"]!["environment"] as Record<string, string>;
    const registryPort = new URL(registry["SCHEMA_REGISTRY_LISTENERS"]!).port;
    expect(env["SCHEMA_REGISTRY_URL"]).toBe(`http://schema-registry:${registryPort}`);
    expect(env["REDIS_URL"]).toBe("redis://redis:6379");
    expect(env["CASSANDRA_CONTACT_POINTS"]).toBe("cassandra:9042");
    expect(services["cassandra"]!["environment"]["CASSANDRA_DC"]).toBe(env["CASSANDRA_LOCAL_DC"]);
  });
});

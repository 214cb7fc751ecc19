import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export type ServiceName = "kafka" | "registry" | "redis" | "cassandra";
export const serviceNames: readonly ServiceName[] = ["kafka", "registry", "redis", "cassandra"];

/** Versions proven to run here on Java 17 (see scripts/stack/README.md). */
export const versions = {
  kafka: "3.9.2",
  cassandra: "5.0.9",
  // 3.3.x is built for Java 21; 3.0.x is the newest line that runs on Java 17.
  apicurio: "3.0.9",
} as const;

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

function port(envName: string, fallback: number): number {
  const raw = process.env[envName];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > 65535) {
    throw new Error(`${envName}=${raw} is not a TCP port (1-65535)`);
  }
  return value;
}

export interface StackConfig {
  repoRoot: string;
  /** Per-checkout state: data, logs, pid files, generated configs. Git-ignored. */
  stateDir: string;
  /** Downloaded jars, shared by every checkout on the machine and kept between runs. */
  cacheDir: string;
  envFile: string;
  ports: {
    kafka: number;
    kafkaController: number;
    registry: number;
    redis: number;
    cassandra: number;
    cassandraStorage: number;
  };
}

export function loadConfig(): StackConfig {
  const stateDir = join(repoRoot, ".tessera", "stack");
  const cacheRoot = process.env["XDG_CACHE_HOME"] || join(homedir(), ".cache");
  return {
    repoRoot,
    stateDir,
    cacheDir: process.env["TESSERA_STACK_CACHE"] || join(cacheRoot, "tessera", "stack"),
    envFile: join(repoRoot, ".tessera", "stack.env"),
    ports: {
      kafka: port("TESSERA_KAFKA_PORT", 9092),
      kafkaController: port("TESSERA_KAFKA_CONTROLLER_PORT", 9093),
      registry: port("TESSERA_REGISTRY_PORT", 8081),
      redis: port("TESSERA_REDIS_PORT", 6379),
      cassandra: port("TESSERA_CASSANDRA_PORT", 9042),
      cassandraStorage: port("TESSERA_CASSANDRA_STORAGE_PORT", 7000),
    },
  };
}

/** The connection settings every Tessera service and test reads. */
export function connectionEnv(config: StackConfig): Record<string, string> {
  const { ports } = config;
  return {
    KAFKA_BROKERS: `127.0.0.1:${ports.kafka}`,
    SCHEMA_REGISTRY_URL: `http://127.0.0.1:${ports.registry}/apis/ccompat/v7`,
    REDIS_URL: `redis://127.0.0.1:${ports.redis}`,
    CASSANDRA_CONTACT_POINTS: `127.0.0.1:${ports.cassandra}`,
    CASSANDRA_LOCAL_DC: "datacenter1",
  };
}

import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export type SingleServiceName = "kafka" | "registry" | "redis" | "cassandra";
export type ClusterName = "redis-cluster" | "kafka-cluster" | "s3";
export type ServiceName = SingleServiceName | ClusterName;
/** The single-node stack: what `up` starts without `--only`, and what most tests use. */
export const serviceNames: readonly SingleServiceName[] = ["kafka", "registry", "redis", "cassandra"];
/** Started only when asked for (`--only`, or a test that needs them): the scale-out servers. */
export const clusterNames: readonly ClusterName[] = ["redis-cluster", "kafka-cluster", "s3"];
export const allServiceNames: readonly ServiceName[] = [...serviceNames, ...clusterNames];

/** Versions proven to run here on Java 17 (see scripts/stack/README.md). */
export const versions = {
  kafka: "3.9.2",
  cassandra: "5.0.9",
  // 3.3.x is built for Java 21; 3.0.x is the newest line that runs on Java 17.
  apicurio: "3.0.9",
  // The newest moto whose S3 conditional writes (If-None-Match) answer 412 through moto_server.
  moto: "5.2.5",
} as const;

/** Members of the clusters: 3 Redis primaries + 3 replicas, 3 Kafka brokers (each also a controller). */
export const REDIS_CLUSTER_NODES = 6;
export const KAFKA_CLUSTER_BROKERS = 3;

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
    /** First of 6 consecutive ports; each node's cluster bus is its port + 10000. */
    redisCluster: number;
    /** First of 3 consecutive broker ports; the controllers listen 100 higher. */
    kafkaCluster: number;
    s3: number;
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
      redisCluster: port("TESSERA_REDIS_CLUSTER_PORT", 7001),
      kafkaCluster: port("TESSERA_KAFKA_CLUSTER_PORT", 9192),
      s3: port("TESSERA_S3_PORT", 9400),
    },
  };
}

const range = (first: number, n: number) => Array.from({ length: n }, (_, i) => first + i);

export const redisClusterPorts = (config: StackConfig) =>
  range(config.ports.redisCluster, REDIS_CLUSTER_NODES);
export const kafkaClusterPorts = (config: StackConfig) =>
  range(config.ports.kafkaCluster, KAFKA_CLUSTER_BROKERS);

/** The connection settings every Tessera service and test reads (the single-node stack). */
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

/** Connection settings of one on-demand cluster (written to stack.env while it runs). */
export function clusterEnv(config: StackConfig, name: ClusterName): Record<string, string> {
  const hosts = (ports: number[]) => ports.map((p) => `127.0.0.1:${p}`).join(",");
  switch (name) {
    case "redis-cluster":
      return { REDIS_CLUSTER_NODES: hosts(redisClusterPorts(config)) };
    case "kafka-cluster":
      return { KAFKA_CLUSTER_BROKERS: hosts(kafkaClusterPorts(config)) };
    case "s3":
      // moto accepts any credentials; these only make the AWS SDK sign its requests.
      return {
        S3_ENDPOINT: `http://127.0.0.1:${config.ports.s3}`,
        S3_REGION: "us-east-1",
        S3_ACCESS_KEY_ID: "tessera",
        S3_SECRET_ACCESS_KEY: "tessera-local",
      };
  }
}

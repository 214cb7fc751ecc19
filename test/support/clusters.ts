/**
 * The scale-out servers (Redis Cluster, a 3-broker Kafka, an S3-compatible server) for the tests
 * that need them. Started on first use by `scripts/stack` and shared by every later test file of
 * the run; the global teardown stops what the run started (TESSERA_KEEP_STACK=1 keeps them).
 * Variables the user set win: REDIS_CLUSTER_NODES, KAFKA_CLUSTER_BROKERS, S3_ENDPOINT (+ S3_REGION,
 * S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY). Nothing is skipped: no server, no pass.
 */
import { type ClusterName, clusterEnv, loadConfig } from "../../scripts/stack/config.js";

export type { ClusterName } from "../../scripts/stack/config.js";

export interface ClusterEndpoints {
  REDIS_CLUSTER_NODES: string;
  KAFKA_CLUSTER_BROKERS: string;
  S3_ENDPOINT: string;
  S3_REGION: string;
  S3_ACCESS_KEY_ID: string;
  S3_SECRET_ACCESS_KEY: string;
}

const mainVariable: Record<ClusterName, keyof ClusterEndpoints> = {
  "redis-cluster": "REDIS_CLUSTER_NODES",
  "kafka-cluster": "KAFKA_CLUSTER_BROKERS",
  s3: "S3_ENDPOINT",
};

/**
 * Endpoints of the named clusters, starting those that do not run (and members a fault test
 * killed). Also sets them in process.env, so child processes started by the test inherit them.
 */
export async function clusters(...names: ClusterName[]): Promise<ClusterEndpoints> {
  const fromEnv = names.filter((name) => process.env[mainVariable[name]] && !isNative(name));
  const wanted = names.filter((name) => !fromEnv.includes(name));
  if (wanted.length > 0) {
    const stack = await import("../../scripts/stack/stack.js");
    try {
      await stack.up(wanted, (line) => console.log(line));
    } catch (error) {
      throw new Error(
        `These tests need ${wanted.join(", ")}, and scripts/stack could not start them: ${(error as Error).message}\n` +
          `Fix what it names (Java 17, redis-server, python3-venv), or point ${wanted.map((n) => mainVariable[n]).join("/")} at running servers.`,
      );
    }
    const config = loadConfig();
    for (const name of wanted) Object.assign(process.env, clusterEnv(config, name));
  }
  if (names.includes("s3")) process.env["S3_REGION"] ??= "us-east-1";
  return process.env as unknown as ClusterEndpoints;
}

/** Whether the cluster's variable points at the cluster scripts/stack runs from this checkout. */
function isNative(name: ClusterName): boolean {
  const own = clusterEnv(loadConfig(), name)[mainVariable[name]];
  return process.env[mainVariable[name]] === own;
}

/**
 * Pids of a native cluster's members by member id (`kafka-cluster-2`, `redis-cluster-7003`), for
 * fault tests that kill one. A cluster given by a variable cannot be killed from here: say so.
 */
export async function clusterMembers(name: ClusterName): Promise<Map<string, number>> {
  if (!isNative(name)) {
    throw new Error(
      `this fault test kills ${name} members, so it needs the cluster scripts/stack starts; ` +
        `unset ${mainVariable[name]} (it points at ${process.env[mainVariable[name]]})`,
    );
  }
  const stack = await import("../../scripts/stack/stack.js");
  return stack.memberPids(name);
}

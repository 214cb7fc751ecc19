import { randomBytes } from "node:crypto";
import { inject } from "vitest";
import type { ServiceEndpoints } from "./services.js";

export { type ClusterEndpoints, type ClusterName, clusterMembers, clusters } from "./clusters.js";
export { newBucket, s3Client } from "./s3.js";
export type { ServiceEndpoints } from "./services.js";

/** The services provisioned by global-setup.ts for this test run. */
export function services(): ServiceEndpoints {
  const provided = inject("services");
  if (!provided) {
    throw new Error(
      "No services provided: run integration tests with `npx vitest run --project integration`.",
    );
  }
  return provided;
}

export const kafkaBrokers = () => services().KAFKA_BROKERS.split(",");

/** A name no other test (or earlier run against the same broker) has used. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString("hex")}`;
}

export function cassandraContactPoint(): { contactPoints: string[]; localDataCenter: string } {
  const s = services();
  return { contactPoints: s.CASSANDRA_CONTACT_POINTS.split(","), localDataCenter: s.CASSANDRA_LOCAL_DC };
}

import cassandra from "cassandra-driver";
import { Kafka, logLevel } from "kafkajs";

/** Ready means the broker answers a metadata request and has a controller. */
export async function probeKafka(broker: string): Promise<void> {
  const admin = new Kafka({
    clientId: "tessera-stack-probe",
    brokers: [broker],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 2000,
    requestTimeout: 3000,
    retry: { retries: 0 },
  }).admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    if (cluster.controller === null || cluster.controller < 0) throw new Error("no active controller yet");
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/** Ready means CQL answers a query on system.local. */
export async function probeCassandra(contactPoint: string): Promise<void> {
  const client = new cassandra.Client({
    contactPoints: [contactPoint],
    localDataCenter: "datacenter1",
    socketOptions: { connectTimeout: 2000, readTimeout: 5000 },
  });
  try {
    await client.connect();
    await client.execute("SELECT release_version FROM system.local");
  } finally {
    await client.shutdown().catch(() => {});
  }
}

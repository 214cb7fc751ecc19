import { createConnection } from "node:net";
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

/** Ready means every broker answers, each sees all of them, and there is an active controller. */
export async function probeKafkaCluster(brokers: string[]): Promise<void> {
  for (const broker of brokers) {
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
      if (cluster.controller === null || cluster.controller < 0)
        throw new Error(`${broker}: no active controller yet`);
      if (cluster.brokers.length < brokers.length) {
        throw new Error(`${broker} sees ${cluster.brokers.length} of ${brokers.length} brokers`);
      }
    } finally {
      await admin.disconnect().catch(() => {});
    }
  }
}

/**
 * One inline command to a Redis server on 127.0.0.1; resolves with the reply's text (simple string,
 * bulk string or integer), rejects on an error reply. Enough for probes, without a client library.
 */
export function redisCommand(port: number, command: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const socket = createConnection({ host: "127.0.0.1", port }, () => socket.write(`${command}\r\n`));
    socket.setTimeout(2000, () => socket.destroy(new Error(`redis ${command} timed out`)));
    let buffer = Buffer.alloc(0);
    socket.on("data", (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      const end = buffer.indexOf("\r\n");
      if (end < 0) return;
      const head = buffer.subarray(0, end).toString();
      if (head[0] === "$") {
        const length = Number(head.slice(1));
        if (buffer.length < end + 2 + length) return; // wait for the whole bulk string
        socket.destroy();
        resolvePromise(buffer.subarray(end + 2, end + 2 + length).toString());
        return;
      }
      socket.destroy();
      if (head[0] === "-") reject(new Error(`redis: ${head.slice(1)}`));
      else resolvePromise(head.slice(1));
    });
    socket.once("error", reject);
  });
}

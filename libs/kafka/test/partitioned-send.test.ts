import { describe, expect, it } from "vitest";
import type { BusAdmin, BusProducer, OutgoingRecord } from "../src/bus.js";
import { PartitionedSender } from "../src/partitioned-send.js";
import { partitionForKey } from "../src/partitioner.js";

/** A producer that records each send, and an admin that reports `partitions` partitions. */
function fakes(partitions: number, fail?: number) {
  const sends: { topic: string; messages: OutgoingRecord[] }[] = [];
  const producer = {
    send: async ({ topic, messages }: { topic: string; messages: OutgoingRecord[] }) => {
      sends.push({ topic, messages });
      if (messages[0]!.partition === fail) throw new Error("leader gone");
      return [{ topicName: topic, partition: messages[0]!.partition!, errorCode: 0, baseOffset: "0" }];
    },
  } as unknown as BusProducer;
  let asked = 0;
  const admin = {
    fetchTopicMetadata: async () => {
      asked++;
      return { topics: [{ partitions: Array.from({ length: partitions }, (_, i) => ({ partitionId: i })) }] };
    },
  } as unknown as BusAdmin;
  return { sends, producer, admin, asked: () => asked };
}

describe("PartitionedSender", () => {
  it("sends one request per partition, keyed records where Kafka's default partitioner puts them", async () => {
    const { sends, producer, admin } = fakes(6);
    const sender = new PartitionedSender(producer, admin);
    const messages = Array.from({ length: 60 }, (_, i) => ({ key: `card-${i % 13}`, value: String(i) }));
    const metadata = await sender.send("t", [
      ...messages,
      { key: null, value: "a" },
      { partition: 4, value: "b" },
    ]);
    for (const send of sends) expect(new Set(send.messages.map((m) => m.partition)).size).toBe(1);
    expect(metadata).toHaveLength(sends.length);
    for (const m of sends.flatMap((s) => s.messages).filter((m) => m.key)) {
      expect(m.partition).toBe(partitionForKey(m.key as string, 6));
    }
    // Order within a partition is the batch's order.
    for (const send of sends) {
      const values = send.messages.filter((m) => m.key).map((m) => Number(m.value));
      expect(values).toEqual([...values].sort((a, b) => a - b));
    }
    expect(sends.flatMap((s) => s.messages).find((m) => m.value === "b")!.partition).toBe(4);
  });

  it("rejects when any partition's send fails, after all of them settled, and asks the count again", async () => {
    const { sends, producer, admin, asked } = fakes(3, 1);
    const sender = new PartitionedSender(producer, admin);
    const messages = [0, 1, 2].map((p) => ({ partition: p, value: String(p) }));
    await expect(sender.send("t", messages)).rejects.toThrow("leader gone");
    expect(sends).toHaveLength(3);
    await sender.send("t", [{ partition: 0, value: "x" }]);
    expect(asked()).toBe(2);
  });
});

import type { BusProducer, ProduceRequest } from "@tessera/kafka";
import { describe, expect, it } from "vitest";
import { UpdatePublisher } from "../src/flush.js";

describe("UpdatePublisher", () => {
  it("sends a large flush's FeatureUpdates in requests under the broker's 1 MB limit, in order", async () => {
    const sent: ProduceRequest[] = [];
    const producer = {
      send: async (record: ProduceRequest) => {
        sent.push(record);
        return [];
      },
    } as unknown as BusProducer;
    const publisher = new UpdatePublisher(producer, "features");
    // 20,000 updates of ~200 bytes: 4 MB, which one request of 10,000 used to carry as 2 MB.
    const messages = Array.from({ length: 20_000 }, (_, i) => ({
      key: `card-${i}`,
      value: Buffer.alloc(200, i % 256),
    }));
    publisher.enqueue(messages);
    await publisher.drain();

    const bytes = sent.map((r) =>
      r.messages.reduce((n, m) => n + (m.value as Buffer).length + String(m.key).length, 0),
    );
    expect(Math.max(...bytes)).toBeLessThan(512 * 1024);
    expect(sent.flatMap((r) => r.messages.map((m) => m.key))).toEqual(messages.map((m) => m.key));
  });
});

import { FORMAT_VERSION } from "@tessera/transforms";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { services, uniqueName } from "../../../test/support/index.js";
import { createOnlineStore, type OnlineStore, StoreFencedError, StoreRequestError } from "../src/index.js";
import { onlineStoreContract } from "./online-contract.js";

const keyPrefix = `${uniqueName("test-online")}:`;

onlineStoreContract("redis", {
  open: () => createOnlineStore({ kind: "redis", url: services().REDIS_URL, keyPrefix }),
  remote: {
    get upstream() {
      const url = new URL(services().REDIS_URL);
      return { host: url.hostname, port: Number(url.port || 6379) };
    },
    at: (port, timeoutMs) => {
      // Same credentials and database as the real server, another address.
      const url = new URL(services().REDIS_URL);
      url.hostname = "127.0.0.1";
      url.port = String(port);
      return createOnlineStore({ kind: "redis", url: url.toString(), keyPrefix, timeoutMs });
    },
  },
});

describe("redis online store: layout and flush", () => {
  let redis: Redis;
  let store: OnlineStore;
  const view = { name: "clicks", version: "abc123", retentionMs: 2000 };
  const key = (entity: string) => `${keyPrefix}s${FORMAT_VERSION}:clicks:abc123:{${entity}}`;
  const write = async (group: string, entities: string[], expiresAt: number) => {
    const { epoch, offset } = await store.claimPartition(group, "t", 0);
    await store.writeBatch({
      owner: { consumerGroup: group, topic: "t", partition: 0, epoch },
      expectedOffset: offset,
      offset: offset + 1,
      states: entities.map((entity) => ({
        view: "clicks",
        version: "abc123",
        entity,
        state: new Uint8Array([1, 2]),
        expiresAt,
      })),
    });
    return epoch;
  };

  beforeAll(async () => {
    redis = new Redis(services().REDIS_URL);
    store = createOnlineStore({ kind: "redis", url: services().REDIS_URL, keyPrefix });
    await store.applyView(view);
  });
  afterAll(async () => {
    await store.close();
    const keys = await redis.keys(`${keyPrefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it("keeps one string per entity, hash-tagged by entity, stamped with the owner's epoch, expiring at expiresAt", async () => {
    const expiresAt = Date.now() + 1800;
    const epoch = await write(uniqueName("g"), ["u1"], expiresAt);
    expect(await redis.type(key("u1"))).toBe("string");
    const raw = (await redis.getBuffer(key("u1")))!;
    expect(raw.readUInt32BE(0) * 2 ** 32 + raw.readUInt32BE(4)).toBe(epoch);
    expect([...raw.subarray(8)]).toEqual([1, 2]);
    expect(await redis.pexpiretime(key("u1"))).toBe(expiresAt);
  });

  it("writes nothing when one key of the batch has the wrong type", async () => {
    const group = uniqueName("g");
    await redis.hset(key("intruder"), "f", "not a tile state");
    const attempt = write(group, ["u3", "intruder", "u4"], Date.now() + 60_000);
    await expect(attempt).rejects.toBeInstanceOf(StoreRequestError);
    await expect(attempt).rejects.toThrow(/WRONGTYPE/);
    expect(await redis.exists(key("u3"), key("u4"))).toBe(0);
    expect(await store.readOffsets(group, "t")).toEqual(new Map());
  });

  it("writes nothing of a fenced flush (one script checks the owner before any write)", async () => {
    const group = uniqueName("g");
    const stale = await store.claimPartition(group, "t", 0);
    await store.claimPartition(group, "t", 0);
    const attempt = store.writeBatch({
      owner: { consumerGroup: group, topic: "t", partition: 0, epoch: stale.epoch },
      expectedOffset: -1,
      offset: 5,
      states: [
        {
          view: "clicks",
          version: "abc123",
          entity: "u5",
          state: new Uint8Array([1]),
          expiresAt: Date.now() + 60_000,
        },
      ],
    });
    await expect(attempt).rejects.toBeInstanceOf(StoreFencedError);
    expect(await redis.exists(key("u5"))).toBe(0);
  });
});

/**
 * The online store on a real Redis Cluster (3 primaries + 3 replicas, started by scripts/stack on
 * first use): the same contract suite as every backend, and what only a cluster has — states spread
 * over many hash slots (one script per slot, no script spans slots), fenced per slot.
 *
 * The contract's proxy cases (server cut away, stalled) are not run here: a cluster client follows
 * the nodes' own addresses from CLUSTER SLOTS, so a proxy in front of one seed would not stand
 * between the client and the data. They run against the single server (online-redis.int.test.ts),
 * through the same client code.
 */
import calculateSlot from "cluster-key-slot";
import { Cluster } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusters } from "../../../test/support/clusters.js";
import { uniqueName } from "../../../test/support/index.js";
import { createOnlineStore, type OnlineStore, StoreFencedError } from "../src/index.js";
import { onlineStoreContract } from "./online-contract.js";

const endpoints = await clusters("redis-cluster");
const nodes = endpoints.REDIS_CLUSTER_NODES.split(",");
const keyPrefix = `${uniqueName("test-cluster")}:`;

onlineStoreContract("redis cluster", {
  open: () =>
    createOnlineStore({ kind: "redis", cluster: nodes, keyPrefix, timeoutMs: 5000, replicaAcks: 1 }),
});

describe("redis cluster online store: slots", () => {
  let store: OnlineStore;
  let raw: Cluster;
  const view = { name: "spread", version: "v1", retentionMs: 3_600_000 };

  beforeAll(async () => {
    store = createOnlineStore({ kind: "redis", cluster: nodes, keyPrefix, timeoutMs: 5000 });
    await store.applyView(view);
    raw = new Cluster(nodes.map((n) => ({ host: n.split(":")[0]!, port: Number(n.split(":")[1]) })));
  });
  afterAll(async () => {
    await store.close();
    raw.disconnect();
  });

  const entities = Array.from({ length: 2000 }, (_, i) => `card-${i}`);
  const states = (epochByte: number) =>
    entities.map((entity) => ({
      view: view.name,
      version: view.version,
      entity,
      state: new Uint8Array([epochByte]),
      expiresAt: Date.now() + 600_000,
    }));

  it("writes a flush whose states span every primary, each in its entity's slot", async () => {
    const group = uniqueName("g");
    const { epoch, offset } = await store.claimPartition(group, "t", 0);
    await store.writeBatch({
      owner: { consumerGroup: group, topic: "t", partition: 0, epoch },
      expectedOffset: offset,
      offset: 99,
      states: states(1),
    });
    const slots = new Set(entities.map((e) => calculateSlot(`{${e}}`)));
    expect(slots.size).toBeGreaterThan(1000);
    expect((await store.readStates(view.name, view.version, entities)).every((s) => s?.[0] === 1)).toBe(true);
    expect(await store.readOffsets(group, "t")).toEqual(new Map([[0, 99]]));
    const primaries = raw.nodes("master");
    expect(primaries.length).toBe(3);
  });

  it("refuses a stalled owner in every slot a newer owner wrote, and leaves the offset alone", async () => {
    const group = uniqueName("g");
    const stale = await store.claimPartition(group, "t", 0);
    const fresh = await store.claimPartition(group, "t", 0);
    await store.writeBatch({
      owner: { consumerGroup: group, topic: "t", partition: 0, epoch: fresh.epoch },
      expectedOffset: fresh.offset,
      offset: 10,
      states: states(2),
    });
    const attempt = store.writeBatch({
      owner: { consumerGroup: group, topic: "t", partition: 0, epoch: stale.epoch },
      expectedOffset: -1,
      offset: 20,
      states: states(9),
    });
    await expect(attempt).rejects.toBeInstanceOf(StoreFencedError);
    expect((await store.readStates(view.name, view.version, entities)).every((s) => s?.[0] === 2)).toBe(true);
    expect(await store.readOffsets(group, "t")).toEqual(new Map([[0, 10]]));
  });
});

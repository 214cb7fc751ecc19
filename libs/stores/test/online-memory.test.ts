import { describe, expect, it } from "vitest";
import { createOnlineStore, MemoryOnlineStore } from "../src/index.js";
import { onlineStoreContract } from "./online-contract.js";

onlineStoreContract("memory", { open: () => createOnlineStore({ kind: "memory" }) });

describe("memory online store", () => {
  const view = { name: "v", version: "1", retentionMs: 1000 };

  it("frees expired states on a driven clock", async () => {
    let now = 1_000_000;
    const store = new MemoryOnlineStore({ now: () => now });
    await store.applyView(view);
    const { epoch } = await store.claimPartition("g", "t", 0);
    await store.writeBatch({
      owner: { consumerGroup: "g", topic: "t", partition: 0, epoch },
      expectedOffset: -1,
      offset: 0,
      states: [{ view: "v", version: "1", entity: "e", state: new Uint8Array([1]), expiresAt: now + 500 }],
    });
    now += 499;
    expect(await store.readStates("v", "1", ["e"])).toEqual([new Uint8Array([1])]);
    now += 1;
    expect(await store.readStates("v", "1", ["e"])).toEqual([null]);
  });

  it("does not share state bytes with the caller", async () => {
    const store = new MemoryOnlineStore();
    await store.applyView(view);
    const { epoch } = await store.claimPartition("g", "t", 0);
    const state = new Uint8Array([1, 2]);
    await store.writeBatch({
      owner: { consumerGroup: "g", topic: "t", partition: 0, epoch },
      expectedOffset: -1,
      offset: 0,
      states: [{ view: "v", version: "1", entity: "e", state, expiresAt: Date.now() + 60_000 }],
    });
    state[0] = 9;
    const [read] = await store.readStates("v", "1", ["e"]);
    expect([...read!]).toEqual([1, 2]);
    read![1] = 7;
    expect([...(await store.readStates("v", "1", ["e"]))[0]!]).toEqual([1, 2]);
  });
});

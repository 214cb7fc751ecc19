import { describe, expect, it } from "vitest";
import { createOnlineStore, MemoryOnlineStore } from "../src/index.js";
import { onlineStoreContract } from "./online-contract.js";

onlineStoreContract("memory", { open: () => createOnlineStore({ kind: "memory" }) });

describe("memory online store", () => {
  it("frees expired tiles and idle entities on a driven clock", async () => {
    let now = 1_000_000;
    const store = new MemoryOnlineStore({ now: () => now });
    const view = { name: "v", version: "1", retentionMs: 1000 };
    await store.applyView(view);
    await store.writeBatch({
      tiles: [
        {
          view: "v",
          version: "1",
          entity: "e",
          aggregation: "c",
          tileStart: now - 500,
          state: new Uint8Array([1]),
        },
      ],
      freshness: [{ view: "v", version: "1", entity: "e", eventTime: now }],
      offsets: [],
    });
    now += 499;
    expect((await store.readTiles("v", "1", ["e"], 0)).get("e")?.tiles).toHaveLength(1);
    now += 1;
    expect((await store.readTiles("v", "1", ["e"], 0)).get("e")).toEqual({
      tiles: [],
      newestEventTime: now - 500,
    });
    now += 500;
    expect((await store.readTiles("v", "1", ["e"], 0)).get("e")).toEqual({
      tiles: [],
      newestEventTime: null,
    });
  });

  it("does not share state bytes with the caller", async () => {
    const store = new MemoryOnlineStore();
    await store.applyView({ name: "v", version: "1", retentionMs: 60_000 });
    const state = new Uint8Array([1, 2]);
    const tileStart = Date.now();
    await store.writeBatch({
      tiles: [{ view: "v", version: "1", entity: "e", aggregation: "c", tileStart, state }],
      freshness: [],
      offsets: [],
    });
    state[0] = 9;
    const read = await store.readTiles("v", "1", ["e"], 0);
    expect([...(read.get("e")?.tiles[0]?.state ?? [])]).toEqual([1, 2]);
  });
});

/**
 * The OnlineStore contract: one suite, registered unchanged for every backend. Each test uses its
 * own view names and consumer groups, so backends may share one server across tests and runs.
 */
import { randomBytes } from "node:crypto";
import { type AddressInfo, connect, createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type EntityTiles,
  type OnlineStore,
  OnlineStoreError,
  type OnlineView,
  StoreRequestError,
  StoreUnavailableError,
  type TileWrite,
} from "../src/index.js";

export interface ContractTarget {
  /** A store on the backend under test. */
  open(): OnlineStore;
  /** For a networked backend: what the suite needs to take the server away. */
  remote?: {
    /** Where the real server listens, for a proxy the suite can cut and restore. */
    upstream: { host: string; port: number };
    /** A store that connects to 127.0.0.1:port only, with every timeout set to timeoutMs. */
    at(port: number, timeoutMs: number): OnlineStore;
  };
}

const HOUR = 3_600_000;
const MINUTE = 60_000;

const unique = (what: string) => `${what}-${randomBytes(4).toString("hex")}`;
const view = (retentionMs = 24 * HOUR): OnlineView => ({ name: unique("view"), version: "v1", retentionMs });
/** Tile starts aligned to the minute, inside a day's retention. */
const minuteAgo = (n: number) => Math.floor(Date.now() / MINUTE) * MINUTE - n * MINUTE;
const state = (...values: number[]) => new Uint8Array(values);

const tile = (
  v: OnlineView,
  entity: string,
  aggregation: string,
  tileStart: number,
  s: Uint8Array,
): TileWrite => ({
  view: v.name,
  version: v.version,
  entity,
  aggregation,
  tileStart,
  state: s,
});

/** Tiles as plain values, so a mismatch prints readably and Buffer/Uint8Array differences do not matter. */
const plain = (entity: EntityTiles | undefined) =>
  entity && {
    newestEventTime: entity.newestEventTime,
    tiles: entity.tiles.map((t) => ({
      aggregation: t.aggregation,
      tileStart: t.tileStart,
      state: [...t.state],
    })),
  };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function onlineStoreContract(backend: string, target: ContractTarget): void {
  describe(`OnlineStore contract: ${backend}`, () => {
    let store: OnlineStore;

    beforeAll(() => {
      store = target.open();
    });
    afterAll(async () => {
      await store.close();
    });

    it("round-trips tiles, freshness and offsets", async () => {
      const v = view();
      await store.applyView(v);
      const [t0, t1] = [minuteAgo(2), minuteAgo(1)];
      await store.writeBatch({
        tiles: [
          tile(v, "alice", "count_1h", t1, state(2)),
          tile(v, "alice", "count_1h", t0, state(1)),
          tile(v, "alice", "sum_amount", t0, state(9, 8, 7)),
          tile(v, "bob", "count_1h", t1, state(5)),
        ],
        freshness: [
          { view: v.name, version: v.version, entity: "alice", eventTime: t1 + 1234 },
          { view: v.name, version: v.version, entity: "bob", eventTime: t1 + 5 },
        ],
        offsets: [{ consumerGroup: unique("g"), topic: "events", partition: 0, offset: 41 }],
      });
      const read = await store.readTiles(v.name, v.version, ["alice", "bob"], t0);
      expect(plain(read.get("alice"))).toEqual({
        newestEventTime: t1 + 1234,
        tiles: [
          { aggregation: "count_1h", tileStart: t0, state: [1] },
          { aggregation: "sum_amount", tileStart: t0, state: [9, 8, 7] },
          { aggregation: "count_1h", tileStart: t1, state: [2] },
        ],
      });
      expect(plain(read.get("bob"))).toEqual({
        newestEventTime: t1 + 5,
        tiles: [{ aggregation: "count_1h", tileStart: t1, state: [5] }],
      });
    });

    it("keeps state bytes exactly: every byte value, and empty states", async () => {
      const v = view();
      await store.applyView(v);
      const all = new Uint8Array(256).map((_, i) => i);
      const t = minuteAgo(1);
      await store.writeBatch({
        tiles: [tile(v, "e", "all", t, all), tile(v, "e", "empty", t, new Uint8Array(0))],
        offsets: [],
        freshness: [],
      });
      const read = await store.readTiles(v.name, v.version, ["e"], t, t);
      expect(plain(read.get("e"))?.tiles).toEqual([
        { aggregation: "all", tileStart: t, state: [...all] },
        { aggregation: "empty", tileStart: t, state: [] },
      ]);
    });

    it("overwrites with absolute values, never adds", async () => {
      const v = view();
      await store.applyView(v);
      const group = unique("g");
      const t = minuteAgo(1);
      const write = (s: Uint8Array, eventTime: number, offset: number) =>
        store.writeBatch({
          tiles: [tile(v, "e", "count", t, s)],
          freshness: [{ view: v.name, version: v.version, entity: "e", eventTime }],
          offsets: [{ consumerGroup: group, topic: "events", partition: 3, offset }],
        });
      await write(state(1, 1, 1, 1), t + 500, 10);
      await write(state(7), t + 100, 20);
      const read = await store.readTiles(v.name, v.version, ["e"], t);
      expect(plain(read.get("e"))).toEqual({
        newestEventTime: t + 100,
        tiles: [{ aggregation: "count", tileStart: t, state: [7] }],
      });
      expect(await store.readOffsets(group, "events")).toEqual(new Map([[3, 20]]));
    });

    it("lands a batch's tiles and offsets together", async () => {
      const v = view();
      await store.applyView(v);
      const group = unique("g");
      const t = minuteAgo(1);
      for (let i = 1; i <= 20; i++) {
        await store.writeBatch({
          tiles: [tile(v, "a", "count", t, state(i)), tile(v, "b", "count", t, state(i))],
          freshness: [],
          offsets: [
            { consumerGroup: group, topic: "events", partition: 0, offset: i * 10 },
            { consumerGroup: group, topic: "events", partition: 1, offset: i * 10 + 1 },
          ],
        });
        const [tiles, offsets] = [
          await store.readTiles(v.name, v.version, ["a", "b"], t),
          await store.readOffsets(group, "events"),
        ];
        expect([tiles.get("a")?.tiles[0]?.state[0], tiles.get("b")?.tiles[0]?.state[0]]).toEqual([i, i]);
        expect(offsets).toEqual(
          new Map([
            [0, i * 10],
            [1, i * 10 + 1],
          ]),
        );
      }
    });

    it("never shows a reader half of an entity's flush", async () => {
      const v = view();
      await store.applyView(v);
      const starts = [minuteAgo(2), minuteAgo(1)];
      const aggregations = ["a", "b", "c", "d", "e"];
      let writing = true;
      const writer = (async () => {
        for (let i = 1; i <= 30; i++) {
          await store.writeBatch({
            tiles: starts.flatMap((s) => aggregations.map((a) => tile(v, "e", a, s, state(i)))),
            freshness: [{ view: v.name, version: v.version, entity: "e", eventTime: i }],
            offsets: [],
          });
        }
        writing = false;
      })();
      const seen = new Set<string>();
      while (writing) {
        const e = (await store.readTiles(v.name, v.version, ["e"], 0)).get("e")!;
        const values = new Set([e.newestEventTime ?? 0, ...e.tiles.map((t) => t.state[0])]);
        seen.add(`${e.tiles.length}:${[...values].join(",")}`);
      }
      await writer;
      // Every read saw nothing, or all ten tiles and the freshness of one and the same flush.
      for (const read of seen) expect(read).toMatch(/^(0:0|10:\d+)$/);
      expect([...seen].some((read) => read.startsWith("10:"))).toBe(true);
    });

    it("writes nothing of a batch that fails", async () => {
      const good = view();
      await store.applyView(good);
      const group = unique("g");
      const t = minuteAgo(1);
      const bad = [
        // A view this store never applied.
        { ...tile(good, "e", "count", t, state(1)), view: unique("never-applied") },
        { ...tile(good, "e", "count", t, state(1)), tileStart: 1.5 },
        { ...tile(good, "", "count", t, state(1)) },
      ];
      for (const poison of bad) {
        const attempt = store.writeBatch({
          tiles: [tile(good, "e", "count", t, state(1)), poison],
          freshness: [{ view: good.name, version: good.version, entity: "e", eventTime: t }],
          offsets: [{ consumerGroup: group, topic: "events", partition: 0, offset: 5 }],
        });
        await expect(attempt).rejects.toBeInstanceOf(StoreRequestError);
      }
      await expect(
        store.writeBatch({
          tiles: [tile(good, "e", "count", t, state(1))],
          freshness: [],
          offsets: [{ consumerGroup: group, topic: "events", partition: 0, offset: -5 }],
        }),
      ).rejects.toBeInstanceOf(StoreRequestError);
      const read = await store.readTiles(good.name, good.version, ["e"], 0);
      expect(plain(read.get("e"))).toEqual({ newestEventTime: null, tiles: [] });
      expect(await store.readOffsets(group, "events")).toEqual(new Map());
    });

    it("filters by tile range, bounds inclusive", async () => {
      const v = view();
      await store.applyView(v);
      const starts = [5, 4, 3, 2, 1].map(minuteAgo);
      await store.writeBatch({
        tiles: starts.map((s, i) => tile(v, "e", "count", s, state(i))),
        freshness: [],
        offsets: [],
      });
      const startsIn = async (from: number, to?: number) =>
        (await store.readTiles(v.name, v.version, ["e"], from, to)).get("e")?.tiles.map((t) => t.tileStart);
      expect(await startsIn(starts[1]!, starts[3]!)).toEqual(starts.slice(1, 4));
      expect(await startsIn(starts[2]!)).toEqual(starts.slice(2));
      expect(await startsIn(starts[0]! + 1, starts[1]! + 1)).toEqual([starts[1]]);
      expect(await startsIn(starts[4]! + 1)).toEqual([]);
      expect(await startsIn(starts[3]!, starts[1]!)).toEqual([]);
    });

    it("reads many entities in one call, with unknown and repeated ones", async () => {
      const v = view();
      await store.applyView(v);
      const t = minuteAgo(1);
      const entities = Array.from({ length: 300 }, (_, i) => `user-${i}`);
      await store.writeBatch({
        tiles: entities.map((e, i) => tile(v, e, "count", t, state(i % 256, Math.floor(i / 256)))),
        freshness: entities.map((e, i) => ({
          view: v.name,
          version: v.version,
          entity: e,
          eventTime: t + i,
        })),
        offsets: [],
      });
      const asked = ["nobody", ...entities, "user-7"];
      const read = await store.readTiles(v.name, v.version, asked, t);
      expect([...read.keys()]).toEqual(asked.slice(0, -1));
      entities.forEach((e, i) => {
        expect(plain(read.get(e))).toEqual({
          newestEventTime: t + i,
          tiles: [{ aggregation: "count", tileStart: t, state: [i % 256, Math.floor(i / 256)] }],
        });
      });
      expect(plain(read.get("nobody"))).toEqual({ newestEventTime: null, tiles: [] });
      expect((await store.readTiles(v.name, v.version, [], 0)).size).toBe(0);
    });

    it("keeps entity names with separators and unicode apart", async () => {
      const v = view();
      await store.applyView(v);
      const t = minuteAgo(1);
      const names = ["a:b", "a", "a|b", "{a}", "a b", "ü🙂", "a\u0000b"];
      await store.writeBatch({
        tiles: names.map((e, i) => tile(v, e, "x|y:z", t, state(i))),
        freshness: [],
        offsets: [],
      });
      const read = await store.readTiles(v.name, v.version, names, t);
      expect(names.map((e) => plain(read.get(e))?.tiles)).toEqual(
        names.map((_, i) => [{ aggregation: "x|y:z", tileStart: t, state: [i] }]),
      );
    });

    it("keeps offsets per consumer group, topic and partition", async () => {
      const [g1, g2] = [unique("g"), unique("g")];
      await store.writeBatch({
        tiles: [],
        freshness: [],
        offsets: [
          { consumerGroup: g1, topic: "a", partition: 0, offset: 1 },
          { consumerGroup: g1, topic: "a", partition: 7, offset: 2 },
          { consumerGroup: g1, topic: "b", partition: 0, offset: 3 },
          { consumerGroup: g2, topic: "a", partition: 0, offset: 4 },
        ],
      });
      await store.writeBatch({
        tiles: [],
        freshness: [],
        offsets: [{ consumerGroup: g1, topic: "a", partition: 7, offset: 2 ** 40 }],
      });
      expect(await store.readOffsets(g1, "a")).toEqual(
        new Map([
          [0, 1],
          [7, 2 ** 40],
        ]),
      );
      expect(await store.readOffsets(g1, "b")).toEqual(new Map([[0, 3]]));
      expect(await store.readOffsets(g2, "a")).toEqual(new Map([[0, 4]]));
      expect(await store.readOffsets(g2, "b")).toEqual(new Map());
    });

    it("isolates views and versions of the same entity", async () => {
      const v1 = view();
      const v2 = { ...v1, version: "v2" };
      const other = view();
      for (const v of [v1, v2, other]) await store.applyView(v);
      const t = minuteAgo(1);
      await store.writeBatch({
        tiles: [tile(v1, "e", "count", t, state(1)), tile(v2, "e", "count", t, state(2))],
        freshness: [{ view: v1.name, version: v1.version, entity: "e", eventTime: t }],
        offsets: [],
      });
      const read = async (v: OnlineView) =>
        plain((await store.readTiles(v.name, v.version, ["e"], 0)).get("e"));
      expect(await read(v1)).toEqual({
        newestEventTime: t,
        tiles: [{ aggregation: "count", tileStart: t, state: [1] }],
      });
      expect(await read(v2)).toEqual({
        newestEventTime: null,
        tiles: [{ aggregation: "count", tileStart: t, state: [2] }],
      });
      expect(await read(other)).toEqual({ newestEventTime: null, tiles: [] });
    });

    it("applies a view idempotently, from several store instances", async () => {
      const v = view();
      await store.applyView(v);
      const t = minuteAgo(1);
      await store.writeBatch({ tiles: [tile(v, "e", "count", t, state(3))], freshness: [], offsets: [] });
      const second = target.open();
      try {
        // On a shared backend, a second process applying the same view must leave the data alone.
        await Promise.all([store.applyView(v), second.applyView(v), second.applyView(v)]);
        const read = await store.readTiles(v.name, v.version, ["e"], t);
        expect(plain(read.get("e"))?.tiles).toEqual([{ aggregation: "count", tileStart: t, state: [3] }]);
      } finally {
        await second.close();
      }
    });

    it("refuses reads and writes of a view that was not applied, and bad views", async () => {
      const v = view();
      await expect(store.readTiles(v.name, v.version, ["e"], 0)).rejects.toBeInstanceOf(StoreRequestError);
      await expect(store.applyView({ ...v, retentionMs: 0 })).rejects.toBeInstanceOf(StoreRequestError);
      await expect(store.applyView({ ...v, name: "" })).rejects.toBeInstanceOf(StoreRequestError);
      await store.applyView(v);
      await expect(store.readTiles(v.name, v.version, ["e"], 0.5)).rejects.toBeInstanceOf(StoreRequestError);
    });

    it("expires tiles at tileStart + retention and an idle entity after retention", async () => {
      const retentionMs = 2000;
      const v = view(retentionMs);
      await store.applyView(v);
      const written = Date.now();
      const soon = written - 1400; // expires ~600 ms from now
      const late = written; // expires ~2000 ms from now
      await store.writeBatch({
        tiles: [
          tile(v, "e", "count", soon, state(1)),
          tile(v, "e", "count", late, state(2)),
          tile(v, "e", "count", written - 5000, state(3)), // already expired: dropped
        ],
        freshness: [{ view: v.name, version: v.version, entity: "e", eventTime: late }],
        offsets: [],
      });
      const starts = async () => {
        const e = (await store.readTiles(v.name, v.version, ["e"], 0)).get("e");
        return { starts: e?.tiles.map((t) => t.tileStart), newest: e?.newestEventTime };
      };
      expect(await starts()).toEqual({ starts: [soon, late], newest: late });
      await sleep(written + 900 - Date.now());
      expect(await starts()).toEqual({ starts: [late], newest: late });
      await sleep(written + retentionMs + 300 - Date.now());
      expect(await starts()).toEqual({ starts: [], newest: null });
    });

    it("rejects calls after close", async () => {
      const closing = target.open();
      const v = view();
      await closing.applyView(v);
      await closing.close();
      await expect(closing.readOffsets("g", "t")).rejects.toBeInstanceOf(OnlineStoreError);
      await expect(closing.readTiles(v.name, v.version, ["e"], 0)).rejects.toBeInstanceOf(OnlineStoreError);
    });

    if (target.remote) {
      const remote = target.remote;
      const timeoutMs = 500;
      const offsetOnly = (offset: number) => ({
        tiles: [],
        freshness: [],
        offsets: [{ consumerGroup: "g", topic: "t", partition: 0, offset }],
      });
      const expectUnavailable = async (name: string, call: () => Promise<unknown>) => {
        const started = Date.now();
        const error = await call().then(
          () => undefined,
          (err: unknown) => err,
        );
        expect(error, name).toBeInstanceOf(StoreUnavailableError);
        expect((error as StoreUnavailableError).retriable, name).toBe(true);
        expect(Date.now() - started, name).toBeLessThan(timeoutMs + 500);
      };
      // The caller retries on StoreUnavailableError, as the processor and the feature server will;
      // the first connection may take longer than one call's timeout.
      const retrying = async (call: () => Promise<void>) => {
        const deadline = Date.now() + 15_000;
        for (;;) {
          try {
            return await call();
          } catch (err) {
            expect(err).toBeInstanceOf(StoreUnavailableError);
            if (Date.now() > deadline) throw err;
            await sleep(200);
          }
        }
      };
      const expectAllUnavailable = async (port: number) => {
        const down = remote.at(port, timeoutMs);
        try {
          await expectUnavailable("applyView", () => down.applyView(view()));
          await expectUnavailable("readOffsets", () => down.readOffsets("g", "t"));
          await expectUnavailable("writeBatch", () => down.writeBatch(offsetOnly(1)));
        } finally {
          await down.close();
        }
      };

      it("fails with a retriable StoreUnavailableError when nothing listens", async () => {
        const closed = createServer();
        const port = await listen(closed);
        await new Promise((resolve) => closed.close(resolve));
        await expectAllUnavailable(port);
      });

      it("fails within its timeout when the server accepts but never answers", async () => {
        const sockets: Socket[] = [];
        const silent = createServer((socket) => sockets.push(socket));
        const port = await listen(silent);
        try {
          await expectAllUnavailable(port);
        } finally {
          for (const socket of sockets) socket.destroy();
          await new Promise((resolve) => silent.close(resolve));
        }
      });

      it("times out while the server stalls, and carries on when it resumes", async () => {
        const proxy = new CuttableProxy(remote.upstream);
        const through = remote.at(await proxy.up(), timeoutMs);
        const group = unique("g");
        const v = view();
        const t = minuteAgo(1);
        const flush = (offset: number) =>
          through.writeBatch({
            tiles: [tile(v, "e", "count", t, state(offset))],
            freshness: [],
            offsets: [{ consumerGroup: group, topic: "t", partition: 0, offset }],
          });
        try {
          await retrying(() => through.applyView(v));
          await retrying(() => flush(1));
          proxy.stall();
          await expectUnavailable("readOffsets", () => through.readOffsets(group, "t"));
          await expectUnavailable("readTiles", () => through.readTiles(v.name, v.version, ["e"], t));
          // Its outcome is unknown: it may land when the server resumes, before anything sent later.
          await expectUnavailable("writeBatch", () => flush(2));
          proxy.resume();
          await retrying(() => flush(3));
          expect(await through.readOffsets(group, "t")).toEqual(new Map([[0, 3]]));
          const read = await through.readTiles(v.name, v.version, ["e"], t);
          expect(plain(read.get("e"))?.tiles).toEqual([{ aggregation: "count", tileStart: t, state: [3] }]);
        } finally {
          proxy.resume();
          await through.close();
          await proxy.down();
        }
      });

      it("fails fast while the server is gone and recovers by itself when it is back", async () => {
        const proxy = new CuttableProxy(remote.upstream);
        const port = await proxy.up();
        const through = remote.at(port, timeoutMs);
        const group = unique("g");
        const v = view();
        const t = minuteAgo(1);
        const flush = (offset: number) =>
          through.writeBatch({
            tiles: [tile(v, "e", "count", t, state(offset))],
            freshness: [],
            offsets: [{ consumerGroup: group, topic: "t", partition: 0, offset }],
          });
        try {
          await retrying(() => through.applyView(v));
          await retrying(() => flush(1));
          await proxy.down();
          await expectUnavailable("readOffsets", () => through.readOffsets(group, "t"));
          await expectUnavailable("readTiles", () => through.readTiles(v.name, v.version, ["e"], t));
          await expectUnavailable("writeBatch", () => flush(2));
          await proxy.up(port);
          await retrying(() => flush(3));
          expect(await through.readOffsets(group, "t")).toEqual(new Map([[0, 3]]));
          const read = await through.readTiles(v.name, v.version, ["e"], t);
          expect(plain(read.get("e"))?.tiles).toEqual([{ aggregation: "count", tileStart: t, state: [3] }]);
        } finally {
          await through.close();
          await proxy.down();
        }
      });
    }
  });
}

function listen(server: Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve((server.address() as AddressInfo).port));
  });
}

/**
 * A TCP proxy to the real server that can stall (hold all traffic), or drop every connection and stop
 * listening, then come back on the same port.
 */
class CuttableProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private stalled = false;
  private readonly held: [Socket, Buffer][] = [];

  constructor(private readonly upstream: { host: string; port: number }) {}

  up(port = 0): Promise<number> {
    const server = createServer((client) => {
      const upstream = connect(this.upstream.port, this.upstream.host);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on("close", () => this.sockets.delete(socket));
        socket.on("error", () => {
          client.destroy();
          upstream.destroy();
        });
      }
      this.forward(client, upstream);
      this.forward(upstream, client);
    });
    this.server = server;
    return listen(server, port);
  }

  /** Holds every byte in both directions, connections open: a stalled server or a partition. */
  stall(): void {
    this.stalled = true;
  }

  /** Delivers what was held, in order, and forwards again. */
  resume(): void {
    this.stalled = false;
    for (const [to, chunk] of this.held.splice(0)) if (!to.destroyed) to.write(chunk);
  }

  private forward(from: Socket, to: Socket): void {
    from.on("data", (chunk: Buffer) => {
      if (this.stalled) this.held.push([to, chunk]);
      else to.write(chunk);
    });
    from.on("end", () => to.end());
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closed = new Promise((resolve) => server.close(resolve));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}

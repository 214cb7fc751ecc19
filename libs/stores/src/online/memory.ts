import { ViewRegistry, validateBatch, validateIds, validatePartition, viewKey } from "./common.js";
import { StoreFencedError, StoreUnavailableError } from "./errors.js";
import type { Claim, OnlineStore, OnlineView, WriteBatch } from "./types.js";

export interface MemoryOnlineStoreConfig {
  kind: "memory";
  /** Clock for retention; tests may drive it. */
  now?: () => number;
}

interface Held {
  state: Uint8Array;
  expiresAt: number;
  /** Epoch of the owner that wrote it: an older one never overwrites it. */
  epoch: number;
}

interface PartitionRecord {
  epoch: number;
  offset: number;
}

/** Plain Maps with the same semantics as the real stores, for unit tests and the embedded demo. */
export class MemoryOnlineStore implements OnlineStore {
  private readonly views = new ViewRegistry("memory");
  /** viewKey → entity → state */
  private readonly data = new Map<string, Map<string, Held>>();
  /** group\0topic → the claim counter and each partition's owner epoch and offset */
  private readonly partitions = new Map<
    string,
    { epoch: number; partitions: Map<number, PartitionRecord> }
  >();
  private readonly now: () => number;
  private closed = false;

  constructor(config: Omit<MemoryOnlineStoreConfig, "kind"> = {}) {
    this.now = config.now ?? Date.now;
  }

  async applyView(view: OnlineView): Promise<void> {
    this.open();
    this.views.add(view);
    const key = viewKey(view.name, view.version);
    if (!this.data.has(key)) this.data.set(key, new Map());
  }

  async claimPartition(consumerGroup: string, topic: string, partition: number): Promise<Claim> {
    this.open();
    validatePartition("memory", consumerGroup, topic, partition);
    const topicRecord = this.topic(consumerGroup, topic);
    const epoch = ++topicRecord.epoch;
    const record = topicRecord.partitions.get(partition) ?? { epoch: 0, offset: -1 };
    record.epoch = epoch;
    topicRecord.partitions.set(partition, record);
    return { epoch, offset: record.offset };
  }

  async writeBatch(batch: WriteBatch): Promise<void> {
    this.open();
    validateBatch("memory", this.views, batch);
    const { owner } = batch;
    const record = this.topic(owner.consumerGroup, owner.topic).partitions.get(owner.partition);
    if (!record || record.epoch !== owner.epoch) {
      throw new StoreFencedError(
        "memory",
        "epoch",
        `partition ${owner.partition} of ${owner.topic} is owned by epoch ${record?.epoch ?? 0}, not ${owner.epoch}`,
      );
    }
    // Above the expected offset is this owner's own earlier attempt that failed on its way back.
    if (record.offset < batch.expectedOffset) {
      throw new StoreFencedError(
        "memory",
        "offset",
        `partition ${owner.partition} of ${owner.topic} holds offset ${record.offset}, not ${batch.expectedOffset}`,
      );
    }
    for (const s of batch.states) {
      const held = this.data.get(viewKey(s.view, s.version))!.get(s.entity);
      if (held && held.epoch > owner.epoch && held.expiresAt > this.now()) {
        throw new StoreFencedError(
          "memory",
          "epoch",
          `entity ${s.entity} was written by epoch ${held.epoch}`,
        );
      }
    }
    const now = this.now();
    for (const s of batch.states) {
      const entities = this.data.get(viewKey(s.view, s.version))!;
      if (s.expiresAt <= now) entities.delete(s.entity);
      else entities.set(s.entity, { state: s.state.slice(), expiresAt: s.expiresAt, epoch: owner.epoch });
    }
    record.offset = batch.offset;
  }

  async readStates(
    view: string,
    version: string,
    entities: readonly string[],
  ): Promise<(Uint8Array | null)[]> {
    this.open();
    this.views.get(view, version);
    validateIds("memory", entities);
    const stored = this.data.get(viewKey(view, version))!;
    const now = this.now();
    return entities.map((id) => {
      const held = stored.get(id);
      if (!held) return null;
      if (held.expiresAt <= now) {
        stored.delete(id); // freed on read, as Redis and Cassandra free expired values on their own
        return null;
      }
      return held.state.slice();
    });
  }

  async readOffsets(consumerGroup: string, topic: string): Promise<Map<number, number>> {
    this.open();
    const out = new Map<number, number>();
    for (const [partition, record] of this.partitions.get(`${consumerGroup}\u0000${topic}`)?.partitions ??
      []) {
      if (record.offset >= 0) out.set(partition, record.offset);
    }
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private open(): void {
    if (this.closed) throw new StoreUnavailableError("memory", "store is closed");
  }

  private topic(consumerGroup: string, topic: string) {
    const key = `${consumerGroup}\u0000${topic}`;
    let found = this.partitions.get(key);
    if (!found) {
      found = { epoch: 0, partitions: new Map() };
      this.partitions.set(key, found);
    }
    return found;
  }
}

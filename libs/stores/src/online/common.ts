import { type OnlineBackend, StoreRequestError } from "./errors.js";
import type { OnlineView, WriteBatch } from "./types.js";

/** Separates the parts of a view version's identity; never produced by a view name or version of its own. */
export const viewKey = (view: string, version: string) => `${view}\u0000${version}`;

/** The views a store instance has applied, with their retention. */
export class ViewRegistry {
  private readonly views = new Map<string, OnlineView>();

  constructor(private readonly backend: OnlineBackend) {}

  add(view: OnlineView): void {
    const { name, version, retentionMs } = view;
    if (typeof name !== "string" || name === "" || typeof version !== "string" || version === "") {
      throw new StoreRequestError(this.backend, "a view needs a non-empty name and version");
    }
    if (!Number.isSafeInteger(retentionMs) || retentionMs <= 0) {
      throw new StoreRequestError(
        this.backend,
        `view ${name}@${version}: retentionMs must be a positive integer`,
      );
    }
    this.views.set(viewKey(name, version), { name, version, retentionMs });
  }

  get(view: string, version: string): OnlineView {
    const found = this.views.get(viewKey(view, version));
    if (!found) {
      throw new StoreRequestError(
        this.backend,
        `view ${view}@${version} was not applied (call applyView first)`,
      );
    }
    return found;
  }
}

const nonEmpty = (value: unknown) => typeof value === "string" && value !== "";

/** Checks a partition's identity before any I/O. */
export function validatePartition(
  backend: OnlineBackend,
  consumerGroup: string,
  topic: string,
  partition: number,
): void {
  if (!nonEmpty(consumerGroup) || !nonEmpty(topic)) {
    throw new StoreRequestError(backend, "a partition needs a consumer group and a topic");
  }
  if (!Number.isSafeInteger(partition) || partition < 0) {
    throw new StoreRequestError(backend, `partition ${partition} is invalid`);
  }
}

/** Checks a whole batch before any I/O, so a bad item can never leave half a batch behind. */
export function validateBatch(backend: OnlineBackend, views: ViewRegistry, batch: WriteBatch): void {
  const fail = (message: string) => {
    throw new StoreRequestError(backend, `invalid batch: ${message}`);
  };
  const { owner } = batch;
  validatePartition(backend, owner.consumerGroup, owner.topic, owner.partition);
  if (!Number.isSafeInteger(owner.epoch) || owner.epoch <= 0)
    fail(`epoch ${owner.epoch} is not a claimed epoch`);
  // −1 (nothing applied yet) lets a writer land states before the partition's first offset.
  if (!Number.isSafeInteger(batch.offset) || batch.offset < -1) fail(`offset ${batch.offset} is invalid`);
  if (!Number.isSafeInteger(batch.expectedOffset) || batch.expectedOffset < -1) {
    fail(`expected offset ${batch.expectedOffset} is invalid`);
  }
  const seen = new Set<string>();
  for (const s of batch.states) {
    views.get(s.view, s.version);
    if (!nonEmpty(s.entity)) fail(`a state of ${s.view}@${s.version} has no entity`);
    if (!s.entity.isWellFormed()) fail(`entity ${JSON.stringify(s.entity)} is not well-formed UTF-16`);
    if (!(s.state instanceof Uint8Array)) fail(`state of ${s.entity} is not bytes`);
    // −∞ is a state with nothing left: the write deletes it.
    if (Number.isNaN(s.expiresAt) || s.expiresAt === Number.POSITIVE_INFINITY) {
      fail(`expiresAt ${s.expiresAt} of ${s.entity} is not a time`);
    }
    const key = `${viewKey(s.view, s.version)}\u0000${s.entity}`;
    if (seen.has(key)) fail(`entity ${s.entity} of ${s.view}@${s.version} appears twice`);
    seen.add(key);
  }
}

/** Checks the ids of a read before any I/O: a key no write could have made is a bad request, not an outage. */
export function validateIds(backend: OnlineBackend, entities: readonly string[]): void {
  for (const [i, id] of entities.entries()) {
    if (typeof id !== "string" || id === "" || !id.isWellFormed()) {
      throw new StoreRequestError(backend, `entity ${i} is not a non-empty, well-formed string`);
    }
  }
}

/** A Uint8Array over a driver's Buffer, without copying, so every backend returns the same type. */
export const bytes = (buffer: Buffer): Uint8Array =>
  new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);

/**
 * One partition of one source topic as its owner holds it: claimed in the store for one consumer
 * group generation, one incremental evaluator per view of the topic, and what the next flush owes
 * the store and the topics. No I/O here: ingest.ts fills it, flush.ts empties it.
 */
import type { DeadLetter } from "@tessera/kafka";
import type { PartitionOwner, StateWrite } from "@tessera/stores";
import type { ViewRuntime, ViewState } from "@tessera/transforms";
import { ViewState as Evaluator } from "@tessera/transforms";

export class PartitionState {
  /** Last offset applied to the in-memory state (−1: none). */
  applied: number;
  /** Last offset the store holds: the claim's, then each flush's. */
  stored: number;
  readonly views: ViewState[];
  unflushedEvents = 0;
  lastFlush = Date.now();
  lastPrune = Date.now();
  /** Event times applied since the last store write, for the freshness histogram. */
  eventTimes: number[] = [];
  /** States taken from the views but not yet written (a failed write keeps them for the retry). */
  writes: StateWrite[] = [];
  deadLetters: DeadLetter[] = [];
  /** Processing time: only moves forward within a partition, like the tiles' own clock. */
  clock = Number.NEGATIVE_INFINITY;
  committing = false;

  constructor(
    readonly owner: PartitionOwner,
    readonly generation: number,
    runtimes: ViewRuntime[],
    stored: number,
    maxSkewMs: number,
  ) {
    this.applied = stored;
    this.stored = stored;
    this.views = runtimes.map((runtime) => new Evaluator(runtime, { maxSkewMs }));
  }

  get topic(): string {
    return this.owner.topic;
  }

  get partition(): number {
    return this.owner.partition;
  }

  /** Nothing owed to the store or the topics. */
  get idle(): boolean {
    return (
      this.unflushedEvents === 0 &&
      this.applied === this.stored &&
      this.writes.length === 0 &&
      this.deadLetters.length === 0
    );
  }

  /** Entities held in memory, across views. */
  get entities(): number {
    let n = 0;
    for (const view of this.views) n += view.size;
    return n;
  }

  /** Entities changed since the last flush in the view with the most (each record changes at most one per view). */
  get mostDirty(): number {
    let n = 0;
    for (const view of this.views) n = Math.max(n, view.dirtyCount);
    return n;
  }

  /**
   * Encodes every entity changed since the last call, stamped with the offset the state now
   * includes, into the pending writes (a newer state of an entity replaces one a failed write left).
   */
  takeWrites(): void {
    const position = { partition: this.partition, offset: this.applied };
    const taken: StateWrite[] = [];
    for (const view of this.views) {
      const { name, version } = view.runtime.view;
      for (const e of view.takeDirty(position)) {
        taken.push({ view: name, version, entity: e.entity, state: e.state, expiresAt: e.expiresAt });
      }
    }
    if (this.writes.length === 0) {
      this.writes = taken;
      return;
    }
    const byKey = new Map<string, StateWrite>();
    for (const w of [...this.writes, ...taken]) byKey.set(`${w.view}\u0000${w.entity}`, w);
    this.writes = [...byKey.values()];
  }
}

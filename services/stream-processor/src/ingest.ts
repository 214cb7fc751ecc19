/**
 * The first half of the path an event takes: decode, judge (dead letters for what cannot count),
 * load the entities the partition does not hold from the store, apply in log order. Nothing is
 * written here; flush.ts does that.
 */
import { type BusRecord, deadLetterOf } from "@tessera/kafka";
import type { OnlineStore } from "@tessera/stores";
import type { PreparedEvent, Row, View } from "@tessera/transforms";
import type { DeadReason, EventDecoder } from "./codec.js";
import type { ProcessorMetrics } from "./metrics.js";
import type { PartitionState } from "./partition.js";
import type { FlushTracing } from "./tracing.js";

export interface IngestOptions {
  decoder: EventDecoder;
  tracing: FlushTracing;
  store: OnlineStore;
  metrics: ProcessorMetrics;
  /** Processing clock (late/future judgement). */
  now: () => number;
  maxEntityKeyLength: number;
}

type Refusal = { reason: DeadReason; detail: string };

export class Ingest {
  /** Record-level checks no view makes itself: non-finite numbers anywhere a feature reads. */
  private readonly numericColumns: string[];

  constructor(
    private readonly options: IngestOptions,
    views: readonly View[],
  ) {
    this.numericColumns = [
      ...new Set(views.flatMap((v) => v.features.map((f) => f.column)).filter((c) => c !== undefined)),
    ];
  }

  /** Decodes, judges and applies one slice of a batch to the partition's state (no store write). */
  async run(part: PartitionState, messages: BusRecord[]): Promise<void> {
    const { decoder, store, metrics } = this.options;
    const { topic, partition, views } = part;
    const fresh = messages.filter((m) => Number(m.offset) > part.applied);
    if (fresh.length < messages.length) metrics.skipped.inc({ topic }, messages.length - fresh.length);
    if (fresh.length === 0) return;
    metrics.eventsIn.inc({ topic }, fresh.length);
    this.options.tracing.collect(part, fresh);
    await decoder.prepare(
      topic,
      fresh.map((m) => m.value),
    );
    part.clock = Math.max(part.clock, this.options.now());
    const clock = part.clock;
    const dead = (message: BusRecord, refusal: Refusal) => {
      part.deadLetters.push(deadLetterOf({ topic, partition, message }, refusal.reason, refusal.detail));
      metrics.deadLettered.inc({ topic, reason: refusal.reason });
    };

    // Pass 1: decode and judge every record, and find the entities to load from the store.
    const accepted: (PreparedEvent | null)[][] = [];
    const toLoad = views.map(() => new Set<string>());
    for (const message of fresh) {
      const decoded = decoder.decode(topic, message.value);
      if (!decoded.ok) {
        dead(message, decoded);
        continue;
      }
      const rejected = this.judgeRow(decoded.row);
      if (rejected) {
        dead(message, rejected);
        continue;
      }
      const offset = Number(message.offset);
      const events: (PreparedEvent | null)[] = [];
      let refused: Refusal | undefined;
      let untimely: Refusal | undefined;
      for (const state of views) {
        const prepared = state.runtime.prepare(decoded.row, offset);
        if (!prepared.ok) {
          if (prepared.filtered) {
            metrics.filtered.inc({ view: state.runtime.view.name });
            events.push(null);
            continue;
          }
          const value = prepared.column === undefined ? undefined : decoded.row[prepared.column];
          refused = {
            reason:
              prepared.column === undefined
                ? "transform_error"
                : value == null || value === ""
                  ? "missing_field"
                  : "invalid_value",
            detail: `view ${state.runtime.view.name}: ${prepared.reason}`,
          };
          break;
        }
        if (!prepared.entity.isWellFormed()) {
          refused = {
            reason: "invalid_value",
            detail: "entity key is not well-formed UTF-16 (a lone surrogate)",
          };
          break;
        }
        if (prepared.entity.length > this.options.maxEntityKeyLength) {
          refused = {
            reason: "invalid_value",
            detail: `entity key of ${prepared.entity.length} characters is longer than maxEntityKeyLength ${this.options.maxEntityKeyLength}`,
          };
          break;
        }
        const judged = state.judge(prepared, clock);
        if (judged) {
          untimely ??= { reason: judged.status, detail: judged.reason };
          events.push(null);
          continue;
        }
        events.push(prepared);
      }
      if (refused) {
        dead(message, refused);
        continue;
      }
      // Late for one view is not late for another with a longer retention: those still apply it.
      if (untimely) dead(message, untimely);
      events.forEach((event, v) => {
        if (event && !views[v]!.has(event.entity)) toLoad[v]!.add(event.entity);
      });
      accepted.push(events);
    }

    // Entities not in memory carry on from their stored state (after a restart, rebalance or eviction).
    await Promise.all(
      views.map(async (state, v) => {
        const entities = [...toLoad[v]!];
        if (entities.length === 0) return;
        const { name, version } = state.runtime.view;
        const values = await store.readStates(name, version, entities);
        entities.forEach((entity, i) => {
          state.restore(entity, values[i]!, partition);
        });
        metrics.loaded.inc(entities.length);
      }),
    );

    // Pass 2: apply, in log order. An entity whose loaded state already holds an offset skips it.
    const applied = views.map(() => 0);
    let replayed = 0;
    for (const events of accepted) {
      for (let v = 0; v < views.length; v++) {
        const event = events[v];
        if (!event) continue;
        if (!views[v]!.add(event, clock)) {
          replayed++;
          continue;
        }
        part.eventTimes.push(event.ts);
        applied[v]!++;
      }
    }
    views.forEach((state, v) => {
      if (applied[v]! > 0) metrics.applied.inc({ view: state.runtime.view.name }, applied[v]);
    });
    if (replayed > 0) metrics.skipped.inc({ topic }, replayed);
    part.applied = Number(fresh[fresh.length - 1]!.offset);
    part.unflushedEvents += fresh.length;
  }

  private judgeRow(row: Row): Refusal | undefined {
    for (const column of this.numericColumns) {
      const value = row[column];
      if (typeof value === "number" && !Number.isFinite(value)) {
        return { reason: "invalid_value", detail: `${column} is ${value}` };
      }
    }
    return undefined;
  }
}

/**
 * What the worker must not forget, kept on its state topic: the monitor's snapshot (open
 * incidents with their hysteresis counters, windows, accuracy windows, newest event times) and
 * an outbox of alerts not yet delivered to every sink.
 *
 * Order of an evaluation: evaluate, save (the new incident and its alert in the outbox), then
 * hand the alerts to the sinks; each sink's delivery takes the alert out of the outbox (saved at
 * once). A SIGKILL therefore never loses a page and never opens a second incident for one that
 * was open: at worst an alert that reached a sink in the last moment is sent once more, with the
 * same alert_id and status (Alertmanager and alert_id-keyed consumers see the same alert).
 *
 * The input's positions (next offset per partition) are saved with the windows they produced,
 * and the group's offsets are committed to them only after the save: after a SIGKILL the group
 * re-reads what the state lacks, and the input skips what it already has. Windows resume exact.
 */

import type { DriftAlertRecord } from "@tessera/kafka";
import type { Logger } from "@tessera/runtime";
import type { KafkaInput, Positions } from "./kafka-input.js";
import type { DriftMonitor } from "./monitor.js";
import type { KafkaStateStore, StateSnapshot } from "./state-store.js";
import type { StateStatus } from "./status.js";

/** An alert and the sinks that have not yet had it. */
export interface OutboxEntry {
  alert: DriftAlertRecord;
  sinks: string[];
}

const outboxId = (alert: DriftAlertRecord) => `${alert.alert_id}:${alert.status}`;

export class StatePersistence {
  private readonly outbox = new Map<string, OutboxEntry>();
  private saving?: Promise<void>;
  private saveAgain = false;
  private restoredAt = 0;
  private restoredRecords = 0;
  private savedAt: number | null = null;
  private input?: KafkaInput;
  private committed = "";

  constructor(
    private readonly store: KafkaStateStore,
    private readonly monitor: DriftMonitor,
    private readonly topic: string,
    private readonly logger?: Logger,
  ) {}

  /** Reads the state back into the monitor (and the input); returns the alerts still owed to some sink. */
  async restore(input?: KafkaInput): Promise<OutboxEntry[]> {
    this.input = input;
    const { snapshot, records } = await this.store.load();
    const outbox = snapshot.get("outbox");
    const positions = snapshot.get("input")?.get("positions") as Positions | undefined;
    snapshot.delete("outbox");
    snapshot.delete("input");
    if (positions) input?.resume(positions);
    this.monitor.restore(snapshot);
    for (const [id, entry] of outbox ?? []) this.outbox.set(id, entry as OutboxEntry);
    this.restoredAt = Date.now();
    this.restoredRecords = records;
    return [...this.outbox.values()];
  }

  /** An alert about to be handed to `sinks`: kept until each has it. */
  hold(alert: DriftAlertRecord, sinks: string[]): void {
    if (sinks.length > 0) this.outbox.set(outboxId(alert), { alert, sinks: [...sinks] });
  }

  /** A sink is done with an alert (delivered or given up): out of the outbox, saved soon. */
  settled(alert: DriftAlertRecord, sink: string): void {
    const entry = this.outbox.get(outboxId(alert));
    if (!entry) return;
    entry.sinks = entry.sinks.filter((s) => s !== sink);
    if (entry.sinks.length === 0) this.outbox.delete(outboxId(alert));
    this.save().catch(() => {}); // logged in save; the next evaluation saves again
  }

  /** Writes what changed; one save at a time, and one more if asked while saving. */
  save(): Promise<void> {
    if (this.saving) {
      this.saveAgain = true;
      return this.saving;
    }
    this.saving = (async () => {
      try {
        do {
          this.saveAgain = false;
          const snapshot = this.snapshot();
          await this.store.save(snapshot);
          this.savedAt = Date.now();
          await this.commit(snapshot.get("input")?.get("positions") as Positions | undefined);
        } while (this.saveAgain);
      } catch (error) {
        this.logger?.error({ err: error, topic: this.topic }, "state not saved: will retry");
        throw error;
      } finally {
        this.saving = undefined;
      }
    })();
    return this.saving;
  }

  async close(): Promise<void> {
    await this.saving?.catch(() => {});
    await this.store.close();
  }

  private async commit(positions: Positions | undefined): Promise<void> {
    const text = JSON.stringify(positions ?? {});
    if (!this.input || !positions || text === this.committed) return;
    try {
      await this.input.commit(positions);
      this.committed = text;
    } catch (error) {
      // A rebalance in between, say: the next save commits again; the skip makes re-reads harmless.
      this.logger?.warn({ err: error }, "offset commit after save failed");
    }
  }

  private snapshot(): StateSnapshot {
    const snapshot = this.monitor.snapshot();
    // Taken in the same synchronous step as the monitor's: the positions match the windows.
    if (this.input) snapshot.set("input", new Map([["positions", this.input.applied()]]));
    snapshot.set("outbox", new Map([...this.outbox].map(([id, entry]) => [id, entry])));
    return snapshot;
  }

  status(): StateStatus {
    return {
      topic: this.topic,
      restoredAt: this.restoredAt,
      restoredRecords: this.restoredRecords,
      savedAt: this.savedAt,
      undelivered: this.outbox.size,
    };
  }
}

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
 */
import type { Logger } from "@tessera/runtime";
import type { DriftAlert } from "./hysteresis.js";
import type { DriftMonitor } from "./monitor.js";
import type { KafkaStateStore, StateSnapshot } from "./state-store.js";
import type { StateStatus } from "./status.js";

/** An alert and the sinks that have not yet had it. */
export interface OutboxEntry {
  alert: DriftAlert;
  sinks: string[];
}

const outboxId = (alert: DriftAlert) => `${alert.alert_id}:${alert.status}`;

export class StatePersistence {
  private readonly outbox = new Map<string, OutboxEntry>();
  private saving?: Promise<void>;
  private saveAgain = false;
  private restoredAt = 0;
  private restoredRecords = 0;
  private savedAt: number | null = null;

  constructor(
    private readonly store: KafkaStateStore,
    private readonly monitor: DriftMonitor,
    private readonly topic: string,
    private readonly logger?: Logger,
  ) {}

  /** Reads the state back into the monitor; returns the alerts still owed to some sink. */
  async restore(): Promise<OutboxEntry[]> {
    const { snapshot, records } = await this.store.load();
    const outbox = snapshot.get("outbox");
    snapshot.delete("outbox");
    this.monitor.restore(snapshot);
    for (const [id, entry] of outbox ?? []) this.outbox.set(id, entry as OutboxEntry);
    this.restoredAt = Date.now();
    this.restoredRecords = records;
    return [...this.outbox.values()];
  }

  /** An alert about to be handed to `sinks`: kept until each has it. */
  hold(alert: DriftAlert, sinks: string[]): void {
    if (sinks.length > 0) this.outbox.set(outboxId(alert), { alert, sinks: [...sinks] });
  }

  /** A sink is done with an alert (delivered or given up): out of the outbox, saved soon. */
  settled(alert: DriftAlert, sink: string): void {
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
          await this.store.save(this.snapshot());
          this.savedAt = Date.now();
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

  private snapshot(): StateSnapshot {
    const snapshot = this.monitor.snapshot();
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

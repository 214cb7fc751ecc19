/**
 * The current window of one monitored subject (a feature or a model output): a quantile sketch
 * or a category counter, plus nulls, in bounded memory whatever the window length.
 */
import {
  CategoryCounter,
  type CategoryCounterJSON,
  type FeatureProfile,
  KllSketch,
  type KllSketchJSON,
} from "@tessera/stats";
import type { WindowConfig } from "./config.js";
import type { TraceRef } from "./hysteresis.js";

/** A window as JSON (the persisted state): event times are null while the window is empty. */
export interface WindowState {
  openedAt: number;
  count: number;
  nulls: number;
  mismatched: number;
  firstEventTime: number | null;
  lastEventTime: number | null;
  trace?: TraceRef;
  sketch?: KllSketchJSON;
  counter?: CategoryCounterJSON;
}

export interface SeriesState {
  current: WindowState;
  closed: WindowState[];
}

const finite = (v: number) => (Number.isFinite(v) ? v : null);

export class FeatureWindow {
  sketch?: KllSketch;
  counter?: CategoryCounter;
  /** Non-null values. */
  count = 0;
  nulls = 0;
  /** Values of the wrong type for the profile (text for a numerical feature): shown, not tested. */
  mismatched = 0;
  firstEventTime = Number.POSITIVE_INFINITY;
  lastEventTime = Number.NEGATIVE_INFINITY;
  /** The newest traced record's context: an alert on this window names it. */
  trace?: TraceRef;

  constructor(
    readonly profile: FeatureProfile,
    /** Processing time the window opened at (time-based windows close on it). */
    readonly openedAt: number,
  ) {
    if (profile.type === "numerical") this.sketch = new KllSketch();
    else this.counter = new CategoryCounter(profile.counts.capacity);
  }

  get observations(): number {
    return this.count + this.nulls;
  }

  toState(): WindowState {
    return {
      openedAt: this.openedAt,
      count: this.count,
      nulls: this.nulls,
      mismatched: this.mismatched,
      firstEventTime: finite(this.firstEventTime),
      lastEventTime: finite(this.lastEventTime),
      ...(this.trace ? { trace: this.trace } : {}),
      ...(this.sketch ? { sketch: this.sketch.toJSON() } : {}),
      ...(this.counter ? { counter: this.counter.toJSON() } : {}),
    };
  }

  /** The window saved by `toState`, or undefined when it no longer fits the profile's type. */
  static fromState(profile: FeatureProfile, state: WindowState): FeatureWindow | undefined {
    if ((profile.type === "numerical") !== (state.sketch !== undefined)) return undefined;
    const window = new FeatureWindow(profile, state.openedAt);
    if (state.sketch) window.sketch = KllSketch.fromJSON(state.sketch);
    if (state.counter) window.counter = CategoryCounter.fromJSON(state.counter);
    window.count = state.count;
    window.nulls = state.nulls;
    window.mismatched = state.mismatched;
    window.firstEventTime = state.firstEventTime ?? Number.POSITIVE_INFINITY;
    window.lastEventTime = state.lastEventTime ?? Number.NEGATIVE_INFINITY;
    window.trace = state.trace;
    return window;
  }

  add(value: unknown, eventTime: number): void {
    if (eventTime < this.firstEventTime) this.firstEventTime = eventTime;
    if (eventTime > this.lastEventTime) this.lastEventTime = eventTime;
    if (value === null || value === undefined || value === "" || Number.isNaN(value)) {
      this.nulls++;
      return;
    }
    if (this.sketch) {
      if (typeof value !== "number" || !Number.isFinite(value)) {
        this.mismatched++;
        return;
      }
      this.sketch.update(value);
    } else {
      // As in a reference profile: numbers in a categorical column count as their decimal text.
      if (typeof value === "object") {
        this.mismatched++;
        return;
      }
      this.counter!.add(String(value));
    }
    this.count++;
  }
}

/** One subject's windows: the open one and those closed but not yet tested. */
export class WindowSeries {
  current: FeatureWindow;
  readonly closed: FeatureWindow[] = [];

  constructor(
    readonly subject: string,
    readonly dataset: string,
    readonly profile: FeatureProfile,
    private readonly config: WindowConfig,
    now: number,
  ) {
    this.current = new FeatureWindow(profile, now);
  }

  add(value: unknown, eventTime: number, now: number, trace?: TraceRef): void {
    this.current.add(value, eventTime);
    // Only a sampled trace can be looked up later: an unsampled one is not worth naming.
    if (trace && ((trace.traceFlags ?? 1) & 1) === 1) this.current.trace = trace;
    if (this.config.mode === "count" && this.current.observations >= this.config.size) this.close(now);
  }

  /** Closes a time-based window whose duration has passed. */
  tick(now: number): void {
    if (this.config.mode === "time" && now - this.current.openedAt >= this.config.durationMs) this.close(now);
  }

  /** Closed windows, oldest first, handed over once. */
  take(): FeatureWindow[] {
    return this.closed.splice(0);
  }

  toState(): SeriesState {
    return { current: this.current.toState(), closed: this.closed.map((w) => w.toState()) };
  }

  /** Continues from saved windows; one that no longer fits the profile is dropped. */
  restore(state: SeriesState): void {
    this.current = FeatureWindow.fromState(this.profile, state.current) ?? this.current;
    this.closed.length = 0;
    for (const saved of state.closed) {
      const window = FeatureWindow.fromState(this.profile, saved);
      if (window) this.closed.push(window);
    }
  }

  private close(now: number): void {
    if (this.current.observations > 0) this.closed.push(this.current);
    // Bounded even if evaluation stalls: the oldest untested windows go first.
    if (this.closed.length > 100) this.closed.shift();
    this.current = new FeatureWindow(this.profile, now);
  }
}

/**
 * The protocol-independent core: validate a request against the catalog and the caller's rights,
 * read each view's states in one store round trip, finalise them at `asOf` with libs/transforms, add
 * on-demand features. HTTP and gRPC are thin adapters around `FeatureService.get`.
 */
import type { OnlineStore } from "@tessera/stores";
import { type FeatureValue, finalizeStored, finalizeTiles } from "@tessera/transforms";
import { ByteBoundedCache, stringBytes } from "./bounded-cache.js";
import { CircuitBreaker, isStoreOutage } from "./breaker.js";
import type { Catalog, Plan, ServedView } from "./catalog.js";
import type { Fallback } from "./config.js";
import { type DegradedCode, invalid, ServeError } from "./errors.js";
import type { GateBoard, GateVerdict } from "./gate.js";
import type { ServerMetrics } from "./metrics.js";
import { tracePhase } from "./tracing.js";

export type Status = "present" | "missing" | "stale" | "quarantined" | "error";

export interface FeatureRequest {
  features: string[];
  /** Entity key name → ids. */
  entities: Record<string, string[]>;
  /** Evaluate at this time (epoch ms) instead of now. */
  at?: number;
  /** Request context for on-demand features. */
  context?: Record<string, unknown>;
}

export interface EntityRow {
  id: string;
  values: FeatureValue[];
  statuses: Status[];
}

export interface EntityGroupResult {
  /** "view:feature" names, in the order of `values` and `statuses`. */
  features: string[];
  results: EntityRow[];
}

/** Why a view's values are not to be trusted as fresh. */
export interface DegradedReason {
  code: DegradedCode;
  message: string;
  /** freshness_sla: how old the view's data is at `asOf`, and the SLA it breaks (ms). */
  ageMs?: number;
  maxAgeMs?: number;
  /** quality_gate: the gate's subject (`view:<name>` or `model:<name>`). */
  subject?: string;
}

export interface ViewInfo {
  version: string;
  newestEventTime: number | null;
  /** True when any reason below holds: the view's values carry status `quarantined` (a tripped
   * gate) or `stale`. */
  degraded: boolean;
  reasons: DegradedReason[];
  /** Gates covering the view that are not ok (an overridden one is listed but not acted on). */
  gates?: GateVerdict[];
}

export interface FeatureResponse {
  asOf: number;
  /** Per view: its version, the newest event time seen across the returned entities, and whether it is degraded. */
  views: Record<string, ViewInfo>;
  /** Per entity key of the request. */
  entities: Record<string, EntityGroupResult>;
}

/** Who is asking: an API key or a JWT subject, and the views it may read. */
/** What a principal may do besides reading its views: `gate` operates quality gates (gate-routes.ts). */
export const RIGHTS = ["gate"] as const;
export type Right = (typeof RIGHTS)[number];

export interface Principal {
  id: string;
  views: ReadonlySet<string> | "*";
  rights?: ReadonlySet<Right>;
}

export interface ServiceOptions {
  catalog: Catalog;
  store: OnlineStore;
  storeTimeoutMs: number;
  breakerFailures: number;
  breakerCooldownMs: number;
  fallback: Fallback;
  /** Byte budget of the last known states kept for the stale fallback (all views together). */
  lastKnownBytes: number;
  retryAfterSeconds: number;
  metrics: ServerMetrics;
  /** The quality gates followed from the gate topic; absent: no gates. */
  gates?: GateBoard;
  now?: () => number;
}

/** An entity's last known state: its bytes, its key's, and a fixed cost per entry. */
const stateBytes = (key: string, state: Uint8Array) => stringBytes(key) + state.byteLength + 64;

interface ViewRead {
  /** Each id's stored state (tile-state encoding), null when the store has none. */
  states: Map<string, Uint8Array | null>;
  /** True when served from last known values because the store failed. */
  stale: boolean;
}

export class FeatureService {
  readonly breaker: CircuitBreaker;
  private readonly now: () => number;
  /** [view, entity] → its state as last read, for the stale fallback. */
  private readonly lastKnown: ByteBoundedCache<Uint8Array>;
  /** False until the store has answered once (start-up): requests get 503 meanwhile. */
  storeReached = false;
  /**
   * Per view, the newest event time seen in any state read so far: the pipeline has processed at
   * least this far, so an entity's value is known complete up to it (an idle card is not stale
   * while others show the stream moving). Its age at `asOf` is what the freshness SLA bounds.
   */
  private readonly watermarks = new Map<string, number>();

  constructor(private readonly options: ServiceOptions) {
    this.now = options.now ?? Date.now;
    this.lastKnown = new ByteBoundedCache(options.lastKnownBytes, stateBytes);
    this.breaker = new CircuitBreaker(
      options.breakerFailures,
      options.breakerCooldownMs,
      isStoreOutage,
      (open) => options.metrics.breakerOpen.set(open ? 1 : 0),
    );
  }

  /** Bytes held by the stale fallback's cache (estimated). */
  get lastKnownBytes(): number {
    return this.lastKnown.bytes;
  }

  /** Served views a request names (for the audit line): never more than the catalog holds. */
  viewsNamed(features: readonly string[]): string[] {
    const views = new Set<string>();
    for (const ref of Array.isArray(features) ? features : []) {
      const view = typeof ref === "string" ? ref.slice(0, Math.max(0, ref.indexOf(":"))) : "";
      if (this.options.catalog.views.has(view)) views.add(view);
    }
    return [...views];
  }

  /** Call after `checkRequest` (validate.ts): the request's shape and limits are known to hold. */
  async get(request: FeatureRequest, principal: Principal): Promise<FeatureResponse> {
    if (!this.storeReached) {
      throw new ServeError(
        "unavailable",
        "starting: the online store has not answered yet",
        undefined,
        this.options.retryAfterSeconds,
      );
    }
    if (this.options.gates && !this.options.gates.caughtUp) {
      throw new ServeError(
        "unavailable",
        "starting: the quality gates have not been read yet",
        undefined,
        this.options.retryAfterSeconds,
      );
    }
    checkRights(request.features, principal);
    const plan = this.options.catalog.resolve(request.features);
    const ids = this.entityIds(plan, request.entities);
    const now = this.now();
    const asOf = request.at ?? now;
    if (request.at !== undefined) for (const served of plan.views) checkAt(served, request.at, now);

    const reads = await Promise.all(
      plan.views.map((served) => this.read(served, ids.get(served.entityKey)!)),
    );

    const endFinalise = tracePhase("finalise"); // tracing
    const context = request.context ?? {};
    const newest: (number | null)[] = plan.views.map(() => null);
    const response: FeatureResponse = { asOf, views: {}, entities: {} };
    for (const group of plan.groups) {
      const slots = [...new Set(group.columns.map((c) => c.view))];
      const rows: EntityRow[] = [];
      for (const id of request.entities[group.entityKey]!) {
        const perView = new Map<number, Finalised>();
        for (const slot of slots) {
          const done = finalise(
            plan.views[slot]!,
            reads[slot]!,
            id,
            asOf,
            plan.features[slot]!,
            plan.needsOnDemand[slot]!,
            context,
          );
          if (done.newest !== null && (newest[slot] === null || done.newest > newest[slot]!))
            newest[slot] = done.newest;
          perView.set(slot, done);
        }
        const values: FeatureValue[] = new Array(group.columns.length);
        const statuses: Status[] = new Array(group.columns.length);
        group.columns.forEach((column, c) => {
          const done = perView.get(column.view)!;
          const k = column.kind === "feature" ? column.index : done.featureCount + column.index;
          values[c] = done.values[k]!;
          statuses[c] = done.statuses[k]!;
        });
        rows.push({ id, values, statuses });
      }
      response.entities[group.entityKey] = { features: group.names, results: rows };
    }
    const marks = plan.views.map((served, slot): Status | undefined => {
      const gate = this.gateReasons(served, now);
      const reasons = [...gate.reasons, ...this.degradedReasons(served, reads[slot]!, newest[slot]!, asOf)];
      const info: ViewInfo = {
        version: served.view.version,
        newestEventTime: newest[slot]!,
        degraded: reasons.length > 0,
        reasons,
      };
      if (gate.verdicts.length > 0) info.gates = gate.verdicts;
      response.views[served.view.name] = info;
      return gate.reasons.length > 0 ? "quarantined" : reasons.length > 0 ? "stale" : undefined;
    });
    if (marks.some(Boolean)) markStatuses(plan, response, marks);
    endFinalise(); // tracing
    return response;
  }

  /**
   * The gates covering the view that are tripped now (acked too; an override in force is not): a
   * reason each, or a 503 when one's policy is refuse. Judged at the request time, not `at`: the
   * gate says what is known wrong now.
   */
  private gateReasons(served: ServedView, now: number) {
    const verdicts = this.options.gates?.verdicts(served.view.name, now) ?? [];
    const reasons: DegradedReason[] = [];
    const { metrics } = this.options;
    for (const verdict of verdicts) {
      if (verdict.state === "overridden") {
        metrics.gateServed.inc({ view: served.view.name, outcome: "overridden" });
        continue;
      }
      const message = `quality gate ${verdict.subject} is ${verdict.state} since ${new Date(verdict.since).toISOString()} (${verdict.causes.join(", ") || "clearing"})`;
      if (verdict.onTrip === "refuse") {
        metrics.gateServed.inc({ view: served.view.name, outcome: "refused" });
        throw new ServeError("unavailable", message, undefined, this.options.retryAfterSeconds, {
          code: "quality_gate",
          view: served.view.name,
        });
      }
      reasons.push({ code: "quality_gate", message, subject: verdict.subject });
    }
    if (reasons.length > 0) metrics.gateServed.inc({ view: served.view.name, outcome: "quarantined" });
    return { verdicts, reasons };
  }

  /** The view's degraded reasons for this request; refuses (503) a stale view whose policy says so. */
  private degradedReasons(served: ServedView, read: ViewRead, newest: number | null, asOf: number) {
    const { view } = served;
    const reasons: DegradedReason[] = [];
    if (read.stale) {
      reasons.push({ code: "store_unavailable", message: "online store unavailable: last known values" });
    }
    const { metrics } = this.options;
    const seen = this.watermarks.get(view.name);
    const watermark = newest !== null && (seen === undefined || newest > seen) ? newest : seen;
    if (watermark === undefined) return reasons; // nothing of the view stored yet: no age to judge
    this.watermarks.set(view.name, watermark);
    const ageMs = Math.max(0, asOf - watermark);
    metrics.servedAge.observe({ view: view.name }, ageMs / 1000); // every view: the freshness SLO's SLI
    if (!view.freshness) return reasons;
    const { maxAgeMs, onStale, from } = view.freshness;
    const breached = ageMs > maxAgeMs;
    metrics.viewDegraded.set({ view: view.name }, breached || read.stale ? 1 : 0);
    if (!breached) return reasons;
    const message = `newest data of view ${view.name} is ${Math.round(ageMs / 1000)} s old at asOf, over its freshness SLA of ${Math.round(maxAgeMs / 1000)} s (from the ${from})`;
    metrics.staleServed.inc({ view: view.name, outcome: onStale === "refuse" ? "refused" : "served" });
    if (onStale === "refuse") {
      throw new ServeError("unavailable", message, undefined, this.options.retryAfterSeconds, {
        code: "freshness_sla",
        view: view.name,
      });
    }
    reasons.push({ code: "freshness_sla", message, ageMs, maxAgeMs });
    return reasons;
  }

  /** Checks the request's entity keys against the plan: every view's key present, nothing extra. */
  private entityIds(plan: Plan, entities: Record<string, string[]>): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const [key, list] of Object.entries(entities)) {
      if (!plan.groups.some((g) => g.entityKey === key)) {
        const keys = plan.groups.map((g) => g.entityKey).join(", ");
        throw invalid(
          `entities.${key}`,
          `no requested view is keyed by ${key} (the requested views use: ${keys})`,
        );
      }
      out.set(key, list.length > 1 ? [...new Set(list)] : list);
    }
    for (const group of plan.groups) {
      if (!out.has(group.entityKey)) {
        const views = plan.views.filter((v) => v.entityKey === group.entityKey).map((v) => v.view.name);
        throw invalid(`entities.${group.entityKey}`, `is required by view ${views.join(", ")}`);
      }
    }
    return out;
  }

  /** One store round trip for a view, through the breaker and the timeout; falls back when configured. */
  private async read(served: ServedView, ids: string[]): Promise<ViewRead> {
    const { view } = served;
    const started = performance.now();
    try {
      const values = await this.breaker.run(() =>
        this.withTimeout(this.options.store.readStates(view.name, view.version, ids)),
      );
      this.options.metrics.storeDuration.observe(
        { view: view.name, outcome: "ok" },
        (performance.now() - started) / 1000,
      );
      const states = new Map<string, Uint8Array | null>();
      ids.forEach((id, i) => {
        states.set(id, values[i] ?? null);
      });
      if (this.options.fallback === "stale") this.remember(view.name, states);
      return { states, stale: false };
    } catch (error) {
      const unavailable = isStoreOutage(error);
      this.options.metrics.storeDuration.observe(
        { view: view.name, outcome: unavailable ? "unavailable" : "error" },
        (performance.now() - started) / 1000,
      );
      if (!unavailable) throw error;
      if (this.options.fallback === "stale") {
        const states = new Map<string, Uint8Array | null>();
        for (const id of ids) {
          const state = this.lastKnown.get(JSON.stringify([view.name, id]));
          if (state) states.set(id, state);
        }
        return { states, stale: true };
      }
      if (error instanceof ServeError) throw error;
      // The store's own message stays in the server (metrics, logs): it names hosts and internals.
      throw new ServeError(
        "unavailable",
        "online store unavailable; retry later",
        undefined,
        this.options.retryAfterSeconds,
      );
    }
  }

  /** The store bounds its own calls too; this bound holds whatever the backend does. */
  private withTimeout<T>(promise: Promise<T>): Promise<T> {
    const ms = this.options.storeTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new ServeError(
              "unavailable",
              `online store did not answer within ${ms} ms`,
              undefined,
              this.options.retryAfterSeconds,
            ),
          ),
        ms,
      );
    });
    promise.catch(() => {}); // the loser may reject later
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }

  private remember(viewName: string, states: Map<string, Uint8Array | null>): void {
    for (const [id, state] of states) {
      if (state === null) continue;
      // A copy: the driver's buffer may hold a whole reply.
      this.lastKnown.set(JSON.stringify([viewName, id]), state.slice());
    }
  }
}

/**
 * Rights before anything else about a view: a reference to a view outside the principal's list is
 * refused (403) whether or not that view or feature exists, so a caller without rights on a view
 * learns nothing about it (not even its feature names, which resolving would list).
 */
function checkRights(features: readonly string[], principal: Principal): void {
  if (principal.views === "*") return;
  features.forEach((ref, i) => {
    const colon = ref.indexOf(":");
    if (colon <= 0) return; // not a reference at all: resolving says so (400), revealing nothing
    const view = ref.slice(0, colon);
    if (!(principal.views as ReadonlySet<string>).has(view)) {
      throw new ServeError("forbidden", `key ${principal.id} may not read view ${view}`, `features[${i}]`);
    }
  });
}

/** Every value of a degraded view takes its mark, `quarantined` or `stale` (an error stays an error). */
function markStatuses(plan: Plan, response: FeatureResponse, marks: (Status | undefined)[]): void {
  for (const group of plan.groups) {
    const columns = group.columns.flatMap((column, c) => (marks[column.view] ? [c] : []));
    if (columns.length === 0) continue;
    for (const row of response.entities[group.entityKey]!.results) {
      for (const c of columns) {
        if (row.statuses[c] !== "error") row.statuses[c] = marks[group.columns[c]!.view]!;
      }
    }
  }
}

/** `at` must lie where the store can still answer: every tile its windows need is retained. */
function checkAt(served: ServedView, at: number, now: number): void {
  const { view } = served;
  if (!Number.isSafeInteger(at) || at < 0) throw invalid("at", `${at} is not a time in epoch ms`);
  // Tile k·H is retained while k·H + retention > now; the window at `at` starts at windowStart(at).
  const earliest = Math.max(
    ...view.features.map((f) => (Math.floor((now - view.retentionMs) / f.hopMs) + 1) * f.hopMs + f.windowMs),
  );
  const latest = now + view.retentionMs;
  if (at < earliest || at > latest) {
    throw invalid(
      "at",
      `${at} is outside view ${view.name}'s retention: it can be evaluated from ${earliest} to ${latest} (now ${now})`,
    );
  }
}

interface Finalised {
  featureCount: number;
  /** Stored features, then on-demand features. */
  values: FeatureValue[];
  statuses: Status[];
  /** The entity's newest event time, when its state is known. */
  newest: number | null;
}

/** Values and statuses of one entity for one view, finalised straight from its stored state. */
function finalise(
  served: ServedView,
  read: ViewRead,
  id: string,
  asOf: number,
  features: readonly number[],
  onDemand: boolean,
  context: Record<string, unknown>,
): Finalised {
  const { view } = served;
  const n = view.features.length;
  const total = n + served.onDemand.length;
  const values: FeatureValue[] = new Array(total).fill(null);
  const statuses: Status[] = new Array(total).fill("error");
  const state = read.states.get(id);
  if (state === undefined) return { featureCount: n, values, statuses, newest: null }; // stale fallback with nothing known
  // A feature is missing when nothing of the entity lies in its window (no stored state at all, or
  // none in range); its value is then the empty window's (0 for count and sum, else null).
  const present = new Array<boolean>(n).fill(false);
  let newest: number | null = null;
  try {
    if (state === null) finalizeTiles(served.runtime.layout, served.blank, asOf, values, present, features);
    else finalizeStored(served.reader.load(state), asOf, values, present, features);
    if (state !== null && Number.isFinite(served.reader.newest)) newest = served.reader.newest;
  } catch {
    return { featureCount: n, values: new Array(total).fill(null), statuses, newest: null }; // undecodable: every value of the view is an error
  }
  for (const f of features) statuses[f] = read.stale ? "stale" : present[f] ? "present" : "missing";
  if (onDemand) {
    const row: Record<string, unknown> = { context };
    view.features.forEach((feature, f) => {
      row[feature.name] = values[f] ?? null;
    });
    served.onDemand.forEach((d, j) => {
      try {
        const value = d.run(row);
        values[n + j] = (value === undefined ? null : value) as FeatureValue;
        statuses[n + j] = read.stale ? "stale" : "present";
      } catch {
        values[n + j] = null;
        statuses[n + j] = "error";
      }
    });
  }
  return { featureCount: n, values, statuses, newest };
}

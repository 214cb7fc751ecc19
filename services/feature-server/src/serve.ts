/**
 * The protocol-independent core: validate a request against the catalog and the caller's rights,
 * read each view's tiles in one store round trip, finalise them at `asOf` with libs/transforms, add
 * on-demand features. HTTP and gRPC are thin adapters around `FeatureService.get`.
 */
import type { EntityTiles, OnlineStore } from "@tessera/stores";
import { type FeatureValue, finalizeAt, type StoredTile, windowStart } from "@tessera/transforms";
import { ByteBoundedCache, stringBytes } from "./bounded-cache.js";
import { CircuitBreaker, isStoreOutage } from "./breaker.js";
import type { Catalog, Plan, ServedView } from "./catalog.js";
import type { Fallback } from "./config.js";
import { invalid, ServeError } from "./errors.js";
import type { ServerMetrics } from "./metrics.js";

export type Status = "present" | "missing" | "stale" | "error";

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

export interface FeatureResponse {
  asOf: number;
  /** Per view: its version and the newest event time seen across the returned entities. */
  views: Record<string, { version: string; newestEventTime: number | null }>;
  /** Per entity key of the request. */
  entities: Record<string, EntityGroupResult>;
}

/** Who is asking: an API key or a JWT subject, and the views it may read. */
export interface Principal {
  id: string;
  views: ReadonlySet<string> | "*";
}

export interface ServiceOptions {
  catalog: Catalog;
  store: OnlineStore;
  storeTimeoutMs: number;
  breakerFailures: number;
  breakerCooldownMs: number;
  fallback: Fallback;
  /** Byte budget of the last known tiles kept for the stale fallback (all views together). */
  lastKnownBytes: number;
  retryAfterSeconds: number;
  metrics: ServerMetrics;
  now?: () => number;
}

/** An entity's last known tiles: the bytes of its states plus a fixed cost per tile. */
const tilesBytes = (key: string, state: EntityTiles) =>
  stringBytes(key) +
  state.tiles.reduce((n, t) => n + t.state.byteLength + stringBytes(t.aggregation) + 48, 64);

interface ViewRead {
  tiles: Map<string, EntityTiles>;
  /** True when served from last known values because the store failed. */
  stale: boolean;
}

export class FeatureService {
  readonly breaker: CircuitBreaker;
  private readonly now: () => number;
  /** [view, entity] → its tiles as last read, for the stale fallback. */
  private readonly lastKnown: ByteBoundedCache<EntityTiles>;
  /** False until the store has answered once (start-up): requests get 503 meanwhile. */
  storeReached = false;

  constructor(private readonly options: ServiceOptions) {
    this.now = options.now ?? Date.now;
    this.lastKnown = new ByteBoundedCache(options.lastKnownBytes, tilesBytes);
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
    checkRights(request.features, principal);
    const plan = this.options.catalog.resolve(request.features);
    const ids = this.entityIds(plan, request.entities);
    const now = this.now();
    const asOf = request.at ?? now;
    if (request.at !== undefined) for (const served of plan.views) checkAt(served, request.at, now);

    const reads = await Promise.all(
      plan.views.map((served) => this.read(served, ids.get(served.entityKey)!, asOf)),
    );

    const response: FeatureResponse = { asOf, views: {}, entities: {} };
    plan.views.forEach((served, slot) => {
      let newest: number | null = null;
      for (const state of reads[slot]!.tiles.values()) {
        if (state.newestEventTime !== null && (newest === null || state.newestEventTime > newest)) {
          newest = state.newestEventTime;
        }
      }
      response.views[served.view.name] = { version: served.view.version, newestEventTime: newest };
    });

    const context = request.context ?? {};
    for (const group of plan.groups) {
      const slots = [...new Set(group.columns.map((c) => c.view))];
      const rows: EntityRow[] = [];
      for (const id of request.entities[group.entityKey]!) {
        const perView = new Map<number, Finalised>();
        for (const slot of slots) {
          perView.set(
            slot,
            finalise(plan.views[slot]!, id, reads[slot]!, asOf, plan.needsOnDemand[slot]!, context),
          );
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
    return response;
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
  private async read(served: ServedView, ids: string[], asOf: number): Promise<ViewRead> {
    const { view } = served;
    const from = Math.min(...view.features.map((f) => windowStart(asOf, f.windowMs, f.hopMs)));
    const started = performance.now();
    try {
      const tiles = await this.breaker.run(() =>
        this.withTimeout(this.options.store.readTiles(view.name, view.version, ids, from, asOf - 1)),
      );
      this.options.metrics.storeDuration.observe(
        { view: view.name, outcome: "ok" },
        (performance.now() - started) / 1000,
      );
      if (this.options.fallback === "stale") this.remember(view.name, tiles);
      return { tiles, stale: false };
    } catch (error) {
      const unavailable = isStoreOutage(error);
      this.options.metrics.storeDuration.observe(
        { view: view.name, outcome: unavailable ? "unavailable" : "error" },
        (performance.now() - started) / 1000,
      );
      if (!unavailable) throw error;
      if (this.options.fallback === "stale") {
        const tiles = new Map<string, EntityTiles>();
        for (const id of ids) {
          const state = this.lastKnown.get(JSON.stringify([view.name, id]));
          if (state) tiles.set(id, state);
        }
        return { tiles, stale: true };
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

  private remember(viewName: string, tiles: Map<string, EntityTiles>): void {
    for (const [id, state] of tiles) {
      if (state.tiles.length === 0 && state.newestEventTime === null) continue;
      this.lastKnown.set(JSON.stringify([viewName, id]), state);
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
}

function finalise(
  served: ServedView,
  id: string,
  read: ViewRead,
  asOf: number,
  onDemand: boolean,
  context: Record<string, unknown>,
): Finalised {
  const { view } = served;
  const n = view.features.length;
  const total = n + served.onDemand.length;
  const values: FeatureValue[] = new Array(total).fill(null);
  const statuses: Status[] = new Array(total).fill("error");
  const state = read.tiles.get(id);
  if (!state) return { featureCount: n, values, statuses }; // stale fallback with nothing known
  const tiles: StoredTile[] = state.tiles.map((t) => ({
    feature: t.aggregation,
    tileStart: t.tileStart,
    bytes: t.state,
  }));
  let vector: Record<string, FeatureValue>;
  try {
    vector = finalizeAt(served.runtime, id, { tiles, pending: null }, asOf);
  } catch {
    return { featureCount: n, values, statuses }; // undecodable tile: every value of the view is an error
  }
  // A feature is missing when no tile of it lies in its window: no state for this entity there.
  const present = new Array<boolean>(n).fill(false);
  for (const t of state.tiles) {
    const f = served.featureIndex.get(t.aggregation);
    if (f === undefined || present[f]) continue;
    const feature = view.features[f]!;
    if (t.tileStart >= windowStart(asOf, feature.windowMs, feature.hopMs) && t.tileStart < asOf)
      present[f] = true;
  }
  for (let f = 0; f < n; f++) {
    values[f] = vector[view.features[f]!.name] ?? null;
    statuses[f] = read.stale ? "stale" : present[f] ? "present" : "missing";
  }
  if (onDemand) {
    const row: Record<string, unknown> = { ...vector, context };
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
  return { featureCount: n, values, statuses };
}

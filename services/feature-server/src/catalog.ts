/**
 * The views a server serves and how a request's feature references resolve against them. A plan is
 * pure data about the definitions, so it is cached per distinct feature list (bounded in bytes).
 */
import type { Definitions, Derive, View, ViewRuntime } from "@tessera/transforms";
import { TileReader, TileState, viewRuntime } from "@tessera/transforms";
import { ByteBoundedCache, stringBytes } from "./bounded-cache.js";
import { invalid } from "./errors.js";

export interface ServedView {
  view: View;
  runtime: ViewRuntime;
  /** Entity key column of the view's source (what request `entities` are keyed by). */
  entityKey: string;
  onDemand: Derive[];
  /** Feature name → index into view.features. */
  featureIndex: Map<string, number>;
  /** Reads stored states (one at a time: finalising is synchronous). */
  reader: TileReader;
  /** The state of an entity the store has nothing of. */
  blank: TileState;
}

/** One output column: a stored feature (finalised) or an on-demand feature, of one view. */
export interface Column {
  name: string;
  view: number; // index into Plan.views
  kind: "feature" | "onDemand";
  index: number;
}

export interface EntityGroupPlan {
  entityKey: string;
  names: string[];
  columns: Column[];
}

export interface Plan {
  views: ServedView[];
  /** Per entity key, the columns in request order ("view:*" expanded, duplicates dropped). */
  groups: EntityGroupPlan[];
  /** Per view (same order as `views`), whether any of its on-demand features is requested. */
  needsOnDemand: boolean[];
  /** Per view, the stored features to finalise: those requested, or all when on-demand ones need them. */
  features: number[][];
}

/** Default byte budget of the plan cache. */
export const PLAN_CACHE_BYTES = 4 * 1024 * 1024;

/** A plan's footprint: its column names (shared strings counted once per column) and fixed parts. */
function planBytes(key: string, plan: Plan): number {
  let bytes = stringBytes(key) + 64 * plan.views.length;
  for (const group of plan.groups) {
    for (const name of group.names) bytes += stringBytes(name) + 64;
  }
  return bytes;
}

/** A value an on-demand feature may return: JSON-representable, so a NaN is an error, not a null. */
function isFeatureValue(value: unknown): boolean {
  if (value === null || value === undefined) return true;
  if (typeof value === "number") return Number.isFinite(value);
  if (typeof value === "string" || typeof value === "boolean") return true;
  return Array.isArray(value) && value.every((v) => !Array.isArray(v) && isFeatureValue(v));
}

/** The on-demand feature, failing (status `error`) on a result no client could read as a value. */
function checkedOnDemand(derive: Derive): Derive {
  return {
    ...derive,
    run: (row) => {
      const value = derive.run(row);
      if (!isFeatureValue(value)) {
        throw new TypeError(`on-demand feature ${derive.name} gave ${String(value)}, not a feature value`);
      }
      return value;
    },
  };
}

export class Catalog {
  readonly views = new Map<string, ServedView>();
  private readonly plans: ByteBoundedCache<Plan>;

  constructor(definitions: Definitions, planCacheBytes = PLAN_CACHE_BYTES) {
    this.plans = new ByteBoundedCache(planCacheBytes, planBytes);
    for (const view of definitions.views) {
      const runtime = viewRuntime(view);
      this.views.set(view.name, {
        view,
        runtime,
        entityKey: view.source.entity,
        onDemand: (view.onDemand ?? []).map(checkedOnDemand),
        featureIndex: new Map(view.features.map((f, i) => [f.name, i])),
        reader: new TileReader(runtime.layout),
        blank: new TileState(runtime.layout),
      });
    }
  }

  /** Bytes the cached plans hold (estimated; never above the budget). */
  get planCacheBytes(): number {
    return this.plans.bytes;
  }

  /** Resolves `view:feature` / `view:*` references; throws an `invalid` error naming `features[i]`. */
  resolve(features: readonly string[]): Plan {
    // JSON is unambiguous: no separator a reference could contain joins two lists into one key.
    const cacheKey = JSON.stringify(features);
    const cached = this.plans.get(cacheKey);
    if (cached) return cached;
    const plan: Plan = { views: [], groups: [], needsOnDemand: [], features: [] };
    const viewSlot = new Map<string, number>();
    const seen = new Set<string>();
    const add = (served: ServedView, slot: number, name: string, kind: Column["kind"], index: number) => {
      const full = `${served.view.name}:${name}`;
      if (seen.has(full)) return;
      seen.add(full);
      let group = plan.groups.find((g) => g.entityKey === served.entityKey);
      if (!group) {
        group = { entityKey: served.entityKey, names: [], columns: [] };
        plan.groups.push(group);
      }
      group.names.push(full);
      group.columns.push({ name: full, view: slot, kind, index });
      if (kind === "onDemand") plan.needsOnDemand[slot] = true;
    };
    for (const [i, ref] of features.entries()) {
      const field = `features[${i}]`;
      const colon = ref.indexOf(":");
      if (colon <= 0 || colon === ref.length - 1) {
        throw invalid(field, `${JSON.stringify(ref)} is not "view:feature" or "view:*"`);
      }
      const viewName = ref.slice(0, colon);
      const name = ref.slice(colon + 1);
      const served = this.views.get(viewName);
      if (!served) {
        throw invalid(
          field,
          `unknown view ${JSON.stringify(viewName)} (served: ${[...this.views.keys()].join(", ")})`,
        );
      }
      let slot = viewSlot.get(viewName);
      if (slot === undefined) {
        slot = plan.views.length;
        viewSlot.set(viewName, slot);
        plan.views.push(served);
        plan.needsOnDemand.push(false);
      }
      if (name === "*") {
        for (const [index, f] of served.view.features.entries()) add(served, slot, f.name, "feature", index);
        for (const [index, d] of served.onDemand.entries()) add(served, slot, d.name, "onDemand", index);
        continue;
      }
      const index = served.featureIndex.get(name);
      const odf = served.onDemand.findIndex((d) => d.name === name);
      if (index !== undefined) add(served, slot, name, "feature", index);
      else if (odf >= 0) add(served, slot, name, "onDemand", odf);
      else throw invalid(field, `view ${viewName} has no feature ${JSON.stringify(name)}`);
    }
    plan.features = plan.views.map((served, slot) =>
      plan.needsOnDemand[slot]
        ? served.view.features.map((_, i) => i)
        : [
            ...new Set(
              plan.groups.flatMap((g) =>
                g.columns.filter((c) => c.view === slot && c.kind === "feature").map((c) => c.index),
              ),
            ),
          ],
    );
    this.plans.set(cacheKey, plan);
    return plan;
  }
}

import { NEEDS_K, NEEDS_QUANTILE, OPS, type Op } from "../aggregators/index.js";
import { defaultHop, parseDuration } from "../duration.js";
import type { OnTrip } from "../gate.js";
import { compileCel } from "./cel.js";
import {
  COMPATIBILITY,
  type Compatibility,
  type Definitions,
  type Derive,
  type Feature,
  type Freshness,
  type Model,
  type Ownership,
  type Row,
  SLO_KINDS,
  type Slo,
  type SloKind,
  type Source,
  type View,
} from "./types.js";
import { viewVersion } from "./version.js";

export interface DefinitionIssue {
  /** Field path, e.g. `views[0].features[3].window`. */
  path: string;
  message: string;
}

/** Invalid definitions: every problem found, each with the path of the offending field. */
export class DefinitionError extends Error {
  constructor(readonly issues: DefinitionIssue[]) {
    super(issues.map((issue) => `${issue.path}: ${issue.message}`).join("\n"));
    this.name = "DefinitionError";
  }
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const LABEL = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Model names are the `model` label of predictions (e.g. `fraud-v1`): dashes and dots too. */
const MODEL_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const OWNERSHIP_KEYS = ["owner", "onCall"];
const SOURCE_KEYS = [
  "name",
  "topic",
  "entity",
  "timestamp",
  "schema",
  "offset",
  "compatibility",
  "archive",
  "freshness",
  ...OWNERSHIP_KEYS,
];
const VIEW_KEYS = [
  "name",
  "source",
  "derive",
  "filter",
  "features",
  "onDemand",
  "freshness",
  "gate",
  ...OWNERSHIP_KEYS,
];
const SLO_KEYS = ["name", "kind", "objective", "window", "threshold", "view", "model", ...OWNERSHIP_KEYS];
const MODEL_KEYS = [
  "name",
  "views",
  "accuracyFloor",
  "aucFloor",
  "reference",
  "freshness",
  "gate",
  ...OWNERSHIP_KEYS,
];
const FEATURE_KEYS = ["name", "op", "column", "window", "hop", "k", "quantile"];

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * The one validator behind both front-ends (TypeScript DSL and YAML): checks the shape, resolves
 * durations and default hops, compiles CEL, and computes each view's version. Throws DefinitionError
 * listing every issue found.
 */
export function validateDefinitions(input: unknown): Definitions {
  const issues: DefinitionIssue[] = [];
  const fail = (path: string, message: string) => {
    issues.push({ path, message });
    return undefined;
  };
  const text = (obj: Obj, key: string, path: string, required = true): string | undefined => {
    const value = obj[key];
    if (value === undefined || value === null)
      return required ? fail(`${path}.${key}`, "is required") : undefined;
    if (typeof value !== "string" || value.trim() === "")
      return fail(`${path}.${key}`, "must be a non-empty string");
    return value;
  };
  const name = (obj: Obj, path: string, pattern = NAME): string | undefined => {
    const value = text(obj, "name", path);
    if (value !== undefined && !pattern.test(value)) {
      const allowed = pattern === NAME ? "letters, digits and _" : "letters, digits, _, - and .";
      return fail(`${path}.name`, `"${value}" must be ${allowed} (not starting with a digit)`);
    }
    return value;
  };
  const unknownKeys = (obj: Obj, allowed: string[], path: string) => {
    for (const key of Object.keys(obj)) {
      if (!allowed.includes(key))
        fail(`${path}.${key}`, `unknown field (expected one of ${allowed.join(", ")})`);
    }
  };
  const list = (obj: Obj, key: string, path: string, required: boolean): unknown[] => {
    const value = obj[key];
    if (value === undefined || value === null) {
      if (required) fail(`${path}${path ? "." : ""}${key}`, "is required");
      return [];
    }
    if (!Array.isArray(value)) {
      fail(`${path}${path ? "." : ""}${key}`, "must be a list");
      return [];
    }
    return value;
  };
  const duration = (value: unknown, path: string): number | undefined => {
    if (typeof value === "number") {
      return Number.isSafeInteger(value) && value > 0
        ? value
        : fail(path, `${value} is not a positive integer of ms`);
    }
    if (typeof value === "string")
      return parseDuration(value) ?? fail(path, `"${value}" is not a duration (<int><ms|s|m|h|d>)`);
    return fail(path, "must be a duration such as 5m or 1h");
  };
  const rowFunction = (value: unknown, path: string, derivedName: string): Derive | undefined => {
    if (typeof value === "function") {
      const fn = value as (row: Row) => unknown;
      return { name: derivedName, text: `fn:${fn.toString()}`, run: fn };
    }
    if (typeof value !== "string" || value.trim() === "")
      return fail(path, "must be a CEL expression (text)");
    try {
      return { name: derivedName, text: value, run: compileCel(value) };
    } catch (error) {
      return fail(path, `invalid CEL: ${(error as Error).message}`);
    }
  };

  /** owner and onCall of a source, view or model, written onto `into`. */
  const ownership = (obj: Obj, path: string, into: Ownership) => {
    const owner = text(obj, "owner", path, false);
    if (owner) into.owner = owner;
    const route = obj["onCall"];
    if (route === undefined || route === null) return;
    if (!isObject(route)) {
      fail(`${path}.onCall`, "must be a mapping with receiver and/or labels");
      return;
    }
    unknownKeys(route, ["receiver", "labels"], `${path}.onCall`);
    const receiver = text(route, "receiver", `${path}.onCall`, false);
    const labels: Record<string, string> = {};
    if (route["labels"] !== undefined) {
      if (!isObject(route["labels"])) fail(`${path}.onCall.labels`, "must be a mapping of label → value");
      else {
        for (const [label, value] of Object.entries(route["labels"])) {
          if (!LABEL.test(label) || label.startsWith("__"))
            fail(`${path}.onCall.labels.${label}`, "is not a Prometheus label name");
          else if (typeof value !== "string" || value === "")
            fail(`${path}.onCall.labels.${label}`, "must be a non-empty string");
          else labels[label] = value;
        }
      }
    }
    if (receiver === undefined && Object.keys(labels).length === 0) {
      fail(`${path}.onCall`, "needs a receiver or labels");
      return;
    }
    into.onCall = receiver === undefined ? { labels } : { receiver, labels };
  };
  /** `freshness: { maxAge, onStale? }` → its max age in ms (and the policy where allowed). */
  const freshness = (obj: Obj, path: string, withPolicy: boolean) => {
    const raw = obj["freshness"];
    if (raw === undefined || raw === null) return undefined;
    if (!isObject(raw)) return fail(`${path}.freshness`, "must be a mapping with maxAge");
    unknownKeys(raw, withPolicy ? ["maxAge", "onStale"] : ["maxAge"], `${path}.freshness`);
    const maxAgeMs =
      raw["maxAge"] === undefined
        ? fail(`${path}.freshness.maxAge`, "is required")
        : duration(raw["maxAge"], `${path}.freshness.maxAge`);
    const onStale = raw["onStale"] ?? "serve";
    if (onStale !== "serve" && onStale !== "refuse")
      return fail(`${path}.freshness.onStale`, `${JSON.stringify(onStale)} is not serve or refuse`);
    return maxAgeMs === undefined ? undefined : { maxAgeMs, onStale: onStale as "serve" | "refuse" };
  };
  /** `gate: { onTrip }` → the policy (quarantine unless it says refuse). */
  const gate = (obj: Obj, path: string): { onTrip: OnTrip } | undefined => {
    const raw = obj["gate"];
    if (raw === undefined || raw === null) return undefined;
    if (!isObject(raw)) return fail(`${path}.gate`, "must be a mapping with onTrip");
    unknownKeys(raw, ["onTrip"], `${path}.gate`);
    const onTrip = raw["onTrip"] ?? "quarantine";
    if (onTrip !== "quarantine" && onTrip !== "refuse")
      return fail(`${path}.gate.onTrip`, `${JSON.stringify(onTrip)} is not quarantine or refuse`);
    return { onTrip };
  };
  const ratio = (obj: Obj, key: string, path: string): number | undefined => {
    const value = obj[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "number" || !(value >= 0 && value <= 1))
      return fail(`${path}.${key}`, "must be a number from 0 to 1");
    return value;
  };

  if (!isObject(input)) {
    fail("(root)", "must be a mapping with `sources` and `views`");
    throw new DefinitionError(issues);
  }
  unknownKeys(input, ["sources", "views", "models", "slos"], "(root)");

  const sources = new Map<string, Source>();
  list(input, "sources", "", true).forEach((raw, i) => {
    const path = `sources[${i}]`;
    if (!isObject(raw)) {
      fail(path, "must be a mapping");
      return;
    }
    unknownKeys(raw, SOURCE_KEYS, path);
    const source = {
      name: name(raw, path),
      topic: text(raw, "topic", path),
      entity: text(raw, "entity", path),
      timestamp: text(raw, "timestamp", path),
      schema: text(raw, "schema", path, false),
      offset: text(raw, "offset", path, false),
      archive: text(raw, "archive", path, false),
    };
    const compatibility = raw["compatibility"];
    if (compatibility !== undefined && !COMPATIBILITY.includes(compatibility as Compatibility)) {
      fail(
        `${path}.compatibility`,
        `${JSON.stringify(compatibility)} is not one of ${COMPATIBILITY.join(", ")}`,
      );
    }
    const sourceFreshness = freshness(raw, path, false);
    if (source.name && sources.has(source.name)) {
      fail(`${path}.name`, `duplicate source "${source.name}"`);
      return;
    }
    if (source.name && source.topic && source.entity && source.timestamp) {
      const clean: Source = {
        name: source.name,
        topic: source.topic,
        entity: source.entity,
        timestamp: source.timestamp,
      };
      if (source.schema) clean.schema = source.schema;
      if (source.offset) clean.offset = source.offset;
      if (typeof compatibility === "string") clean.compatibility = compatibility as Compatibility;
      if (source.archive) clean.archive = source.archive;
      if (sourceFreshness) clean.freshnessMs = sourceFreshness.maxAgeMs;
      ownership(raw, path, clean);
      sources.set(source.name, clean);
    }
  });

  const views: View[] = [];
  const viewNames = new Set<string>();
  const ownFreshness = new Map<string, { maxAgeMs: number; onStale: "serve" | "refuse" }>();
  list(input, "views", "", true).forEach((raw, i) => {
    const path = `views[${i}]`;
    if (!isObject(raw)) {
      fail(path, "must be a mapping");
      return;
    }
    unknownKeys(raw, VIEW_KEYS, path);
    const viewName = name(raw, path);
    if (viewName && viewNames.has(viewName)) fail(`${path}.name`, `duplicate view "${viewName}"`);
    if (viewName) viewNames.add(viewName);
    const sourceName = text(raw, "source", path);
    const source = sourceName === undefined ? undefined : sources.get(sourceName);
    if (sourceName !== undefined && !source) fail(`${path}.source`, `unknown source "${sourceName}"`);

    const derive: Derive[] = [];
    list(raw, "derive", path, false).forEach((d, j) => {
      const dPath = `${path}.derive[${j}]`;
      if (!isObject(d)) {
        fail(dPath, "must be a mapping with name and expr (or fn)");
        return;
      }
      unknownKeys(d, ["name", "expr", "fn"], dPath);
      const dName = name(d, dPath);
      const body = d.fn ?? d.expr;
      const compiled = rowFunction(body, `${dPath}.${d.fn !== undefined ? "fn" : "expr"}`, dName ?? "");
      if (dName && compiled) derive.push(compiled);
    });
    const filter = raw.filter === undefined ? undefined : rowFunction(raw.filter, `${path}.filter`, "filter");

    const features: Feature[] = [];
    const featureNames = new Set<string>();
    const rawFeatures = list(raw, "features", path, true);
    if (Array.isArray(raw.features) && rawFeatures.length === 0)
      fail(`${path}.features`, "must not be empty");
    rawFeatures.forEach((f, j) => {
      const fPath = `${path}.features[${j}]`;
      if (!isObject(f)) {
        fail(fPath, "must be a mapping");
        return;
      }
      unknownKeys(f, FEATURE_KEYS, fPath);
      const fName = name(f, fPath);
      if (fName && featureNames.has(fName))
        fail(`${fPath}.name`, `duplicate feature "${fName}" in this view`);
      if (fName) featureNames.add(fName);
      const op = f.op as Op;
      if (!OPS.includes(op)) fail(`${fPath}.op`, `${JSON.stringify(f.op)} is not an op (${OPS.join(", ")})`);
      const column = text(f, "column", fPath, OPS.includes(op) && op !== "count");
      const windowMs =
        f.window === undefined
          ? fail(`${fPath}.window`, "is required")
          : duration(f.window, `${fPath}.window`);
      let hopMs =
        f.hop === undefined ? (windowMs ? defaultHop(windowMs) : undefined) : duration(f.hop, `${fPath}.hop`);
      if (windowMs && hopMs && hopMs > windowMs) {
        hopMs = fail(`${fPath}.hop`, `${String(f.hop)} is longer than the window ${String(f.window)}`);
      }
      const feature: Partial<Feature> = { name: fName, op, windowMs, hopMs };
      if (column !== undefined) feature.column = column;
      if (NEEDS_K.has(op)) {
        if (!Number.isInteger(f.k) || (f.k as number) < 1 || (f.k as number) > 1000) {
          fail(`${fPath}.k`, `${op} needs k, an integer from 1 to 1000`);
        } else feature.k = f.k as number;
      } else if (f.k !== undefined) fail(`${fPath}.k`, `only last_k and top_k take k`);
      if (NEEDS_QUANTILE.has(op)) {
        if (typeof f.quantile !== "number" || !(f.quantile >= 0 && f.quantile <= 1)) {
          fail(`${fPath}.quantile`, "approx_quantile needs quantile, a number from 0 to 1");
        } else feature.quantile = f.quantile;
      } else if (f.quantile !== undefined) fail(`${fPath}.quantile`, "only approx_quantile takes quantile");
      if (fName && OPS.includes(op) && windowMs && hopMs) features.push(feature as Feature);
    });

    // On-demand features share the view's namespace: `view:name` must name one thing.
    const onDemand: Derive[] = [];
    list(raw, "onDemand", path, false).forEach((d, j) => {
      const dPath = `${path}.onDemand[${j}]`;
      if (!isObject(d)) {
        fail(dPath, "must be a mapping with name and expr (or fn)");
        return;
      }
      unknownKeys(d, ["name", "expr", "fn"], dPath);
      const dName = name(d, dPath);
      if (dName && featureNames.has(dName))
        fail(`${dPath}.name`, `duplicate feature "${dName}" in this view`);
      if (dName) featureNames.add(dName);
      const body = d.fn ?? d.expr;
      const compiled = rowFunction(body, `${dPath}.${d.fn !== undefined ? "fn" : "expr"}`, dName ?? "");
      if (dName && compiled) onDemand.push(compiled);
    });

    const owned: Ownership = {};
    ownership(raw, path, owned);
    const own = freshness(raw, path, true);
    const viewGate = gate(raw, path);
    if (viewName && source && features.length === rawFeatures.length && features.length > 0) {
      const view: View = {
        name: viewName,
        version: viewVersion(source, derive, filter, features),
        source,
        derive,
        features,
        retentionMs: Math.max(...features.map((f) => f.windowMs + f.hopMs)),
      };
      if (filter) view.filter = filter;
      if (onDemand.length > 0) view.onDemand = onDemand;
      Object.assign(view, owned);
      if (viewGate) view.gate = viewGate;
      if (own) ownFreshness.set(viewName, own);
      views.push(view);
    }
  });

  const models: Model[] = [];
  const modelNames = new Set<string>();
  list(input, "models", "", false).forEach((raw, i) => {
    const path = `models[${i}]`;
    if (!isObject(raw)) {
      fail(path, "must be a mapping");
      return;
    }
    unknownKeys(raw, MODEL_KEYS, path);
    const modelName = name(raw, path, MODEL_NAME);
    if (modelName && modelNames.has(modelName)) fail(`${path}.name`, `duplicate model "${modelName}"`);
    if (modelName) modelNames.add(modelName);
    const inputs = list(raw, "views", path, true);
    if (Array.isArray(raw["views"]) && inputs.length === 0) fail(`${path}.views`, "must not be empty");
    inputs.forEach((v, j) => {
      if (typeof v !== "string" || !viewNames.has(v))
        fail(`${path}.views[${j}]`, `unknown view ${JSON.stringify(v)}`);
    });
    const model: Model = {
      name: modelName ?? "",
      views: inputs.filter((v): v is string => typeof v === "string"),
    };
    const accuracyFloor = ratio(raw, "accuracyFloor", path);
    const aucFloor = ratio(raw, "aucFloor", path);
    if (accuracyFloor !== undefined) model.accuracyFloor = accuracyFloor;
    if (aucFloor !== undefined) model.aucFloor = aucFloor;
    const reference = text(raw, "reference", path, false);
    if (reference) model.reference = reference;
    const own = freshness(raw, path, false);
    if (own) model.freshnessMs = own.maxAgeMs;
    const modelGate = gate(raw, path);
    if (modelGate) model.gate = modelGate;
    ownership(raw, path, model);
    if (modelName) models.push(model);
  });

  // Each view's effective SLA: the tightest declared for it, its source or a model that reads it.
  for (const view of views) {
    const own = ownFreshness.get(view.name);
    const candidates: Freshness[] = [];
    if (own) candidates.push({ ...own, from: "view" });
    if (view.source.freshnessMs)
      candidates.push({ maxAgeMs: view.source.freshnessMs, onStale: "serve", from: "source" });
    for (const model of models) {
      if (model.freshnessMs && model.views.includes(view.name))
        candidates.push({ maxAgeMs: model.freshnessMs, onStale: "serve", from: `model ${model.name}` });
    }
    if (candidates.length === 0) continue;
    const tightest = candidates.reduce((a, b) => (b.maxAgeMs < a.maxAgeMs ? b : a));
    // The policy is the view's to choose, whoever sets the limit.
    view.freshness = { ...tightest, onStale: own?.onStale ?? "serve" };
  }

  const slos: Slo[] = [];
  const sloNames = new Set<string>();
  list(input, "slos", "", false).forEach((raw, i) => {
    const path = `slos[${i}]`;
    if (!isObject(raw)) {
      fail(path, "must be a mapping");
      return;
    }
    unknownKeys(raw, SLO_KEYS, path);
    const sloName = name(raw, path);
    if (sloName && sloNames.has(sloName)) fail(`${path}.name`, `duplicate SLO "${sloName}"`);
    if (sloName) sloNames.add(sloName);
    const kind = raw["kind"] as SloKind;
    if (!SLO_KINDS.includes(kind))
      fail(`${path}.kind`, `${JSON.stringify(raw["kind"])} is not one of ${SLO_KINDS.join(", ")}`);
    const objective = raw["objective"];
    if (typeof objective !== "number" || !(objective > 0 && objective < 1))
      fail(`${path}.objective`, "must be a number between 0 and 1 (exclusive), e.g. 0.99");
    const windowMs =
      raw["window"] === undefined ? 28 * 86_400_000 : duration(raw["window"], `${path}.window`);
    const needsThreshold = kind === "freshness" || kind === "latency";
    const thresholdMs =
      raw["threshold"] === undefined
        ? needsThreshold
          ? fail(`${path}.threshold`, `is required for a ${kind} SLO`)
          : undefined
        : needsThreshold
          ? duration(raw["threshold"], `${path}.threshold`)
          : fail(`${path}.threshold`, `only freshness and latency SLOs take a threshold`);
    // A freshness SLO is measured on the view's served age (the feature server's histogram per view).
    const viewName = text(raw, "view", path, kind === "freshness");
    const view = viewName === undefined ? undefined : views.find((v) => v.name === viewName);
    if (viewName !== undefined && !view) fail(`${path}.view`, `unknown view "${viewName}"`);
    const modelName = text(raw, "model", path, kind === "accuracy");
    const model = modelName === undefined ? undefined : models.find((m) => m.name === modelName);
    if (modelName !== undefined && !model) fail(`${path}.model`, `unknown model "${modelName}"`);
    if (kind === "accuracy" && model && model.accuracyFloor === undefined)
      fail(`${path}.model`, `model "${modelName}" has no accuracyFloor to hold`);
    const slo: Slo = { name: sloName ?? "", kind, objective: objective as number, windowMs: windowMs ?? 0 };
    if (thresholdMs !== undefined) slo.thresholdMs = thresholdMs;
    if (viewName) slo.view = viewName;
    if (modelName) slo.model = modelName;
    // Pages go to whoever owns the subject, unless the SLO names its own owner.
    const owned: Ownership = {};
    ownership(raw, path, owned);
    const subject = model ?? view;
    const owner = owned.owner ?? subject?.owner;
    const onCall = owned.onCall ?? subject?.onCall;
    if (owner) slo.owner = owner;
    if (onCall) slo.onCall = onCall;
    slos.push(slo);
  });

  if (issues.length > 0) throw new DefinitionError(issues);
  const definitions = { sources: [...sources.values()], views, models, slos };
  Object.defineProperty(definitions, VALIDATED, { value: true, enumerable: false });
  return definitions;
}

// A registry symbol, not a WeakSet: a definitions module may load its own copy of this library
// (tsx gives imported TypeScript its own module graph).
const VALIDATED = Symbol.for("tessera.definitions.validated");

/** A module's export → Definitions: already validated (from defineDefinitions) or a spec to validate. */
export function resolveDefinitions(value: unknown): Definitions {
  return typeof value === "object" && value !== null && VALIDATED in value
    ? (value as unknown as Definitions)
    : validateDefinitions(value);
}

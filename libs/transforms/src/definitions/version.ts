import { fnv1a64 } from "../hash.js";
import type { Derive, Feature, Source } from "./types.js";

/** JSON with sorted keys, so equal definitions always produce the same text. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * A view's version: the hash of everything that decides its tile contents — the source's topic and
 * columns, derive/filter text, and each feature (sorted by name, so reordering features keeps the
 * version). Names of the view and source are not part of it: keys carry the view name already.
 */
export function viewVersion(
  source: Source,
  derive: Derive[],
  filter: Derive | undefined,
  features: Feature[],
) {
  const normalised = {
    source: {
      topic: source.topic,
      entity: source.entity,
      timestamp: source.timestamp,
      offset: source.offset,
    },
    derive: derive.map((d) => ({ name: d.name, text: d.text })),
    filter: filter?.text,
    features: [...features].sort((a, b) => (a.name < b.name ? -1 : 1)),
  };
  return fnv1a64(canonical(normalised));
}

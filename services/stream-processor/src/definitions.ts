import { DefinitionsLoadError } from "@tessera/runtime";
import type { Definitions, View } from "@tessera/transforms";

/** The views named in the config (all when none are named); an unknown name is an error. */
export function selectViews(definitions: Definitions, names: readonly string[]): View[] {
  if (names.length === 0) return definitions.views;
  const known = new Map(definitions.views.map((v) => [v.name, v]));
  const missing = names.filter((n) => !known.has(n));
  if (missing.length > 0) {
    throw new DefinitionsLoadError(
      `views: ${missing.join(", ")} not in the definitions (known: ${[...known.keys()].join(", ") || "none"})`,
      "invalid",
    );
  }
  return names.map((n) => known.get(n)!);
}

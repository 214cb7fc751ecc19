import { readFile } from "node:fs/promises";
import { extname, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import {
  DefinitionError,
  type Definitions,
  parseDefinitionsYaml,
  resolveDefinitions,
  type View,
} from "@tessera/transforms";

/** A definitions problem found at start: the service refuses to run rather than compute the wrong thing. */
export class DefinitionsLoadError extends Error {
  override name = "DefinitionsLoadError";
}

/**
 * Feature definitions from YAML/JSON, or a module whose default (or `definitions`) export is the
 * result of defineDefinitions(...) or a plain spec. TypeScript modules load through tsx.
 */
export async function loadDefinitions(path: string): Promise<Definitions> {
  const ext = extname(path).toLowerCase();
  try {
    if ([".yaml", ".yml", ".json"].includes(ext)) {
      const text = await readFile(path, "utf8").catch((error: NodeJS.ErrnoException) => {
        throw new DefinitionsLoadError(`definitions ${path}: ${error.code ?? error.message}`);
      });
      // JSON is YAML; one parser and one validator for both.
      return parseDefinitionsYaml(text);
    }
    if (![".ts", ".mts", ".js", ".mjs"].includes(ext)) {
      throw new DefinitionsLoadError(
        `definitions ${path}: must be .yaml, .yml, .json, .ts, .mts, .js or .mjs`,
      );
    }
    const url = pathToFileURL(resolve(path)).href;
    const module: Record<string, unknown> = ext.endsWith("ts")
      ? await (await import("tsx/esm/api")).tsImport(url, import.meta.url)
      : await import(url);
    const exported = module["default"] ?? module["definitions"];
    if (exported === undefined) {
      throw new DefinitionsLoadError(`definitions ${path}: export them as default (or as \`definitions\`)`);
    }
    return resolveDefinitions(exported);
  } catch (error) {
    if (error instanceof DefinitionError) {
      const lines = error.issues.map((issue) => `  ${issue.path}: ${issue.message}`);
      throw new DefinitionsLoadError(`definitions ${path} are invalid:\n${lines.join("\n")}`);
    }
    if (error instanceof DefinitionsLoadError) throw error;
    throw new DefinitionsLoadError(`definitions ${path}: ${(error as Error).message}`);
  }
}

/** The views named in the config (all when none are named); an unknown name is an error. */
export function selectViews(definitions: Definitions, names: readonly string[]): View[] {
  if (names.length === 0) return definitions.views;
  const known = new Map(definitions.views.map((v) => [v.name, v]));
  const missing = names.filter((n) => !known.has(n));
  if (missing.length > 0) {
    throw new DefinitionsLoadError(
      `views: ${missing.join(", ")} not in the definitions (known: ${[...known.keys()].join(", ") || "none"})`,
    );
  }
  return names.map((n) => known.get(n)!);
}

import { readFile } from "node:fs/promises";
import { extname, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { type Definitions, parseDefinitionsYaml, resolveDefinitions } from "@tessera/transforms";

/**
 * Loads feature definitions: YAML, or a module whose default (or `definitions`) export is a spec or
 * the result of defineDefinitions. TypeScript modules are compiled on the fly by tsx when it is
 * installed; in production, point at the compiled .js. Throws DefinitionError naming each field.
 */
export async function loadDefinitions(path: string): Promise<Definitions> {
  const ext = extname(path).toLowerCase();
  if (ext === ".yaml" || ext === ".yml") return parseDefinitionsYaml(await readFile(path, "utf8"));
  if (![".ts", ".mts", ".js", ".mjs"].includes(ext)) {
    throw new Error(`definitions ${path}: expected .yaml, .yml, .ts, .mts, .js or .mjs`);
  }
  const url = pathToFileURL(resolve(path)).href;
  const module: Record<string, unknown> = ext.endsWith("ts")
    ? await (await import("tsx/esm/api")).tsImport(url, import.meta.url)
    : await import(url);
  const exported = module["default"] ?? module["definitions"];
  if (exported === undefined)
    throw new Error(`definitions ${path}: export them as default or as \`definitions\``);
  return resolveDefinitions(exported);
}

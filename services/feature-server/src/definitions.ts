import { readFile } from "node:fs/promises";
import { extname, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { ConfigError } from "@tessera/runtime";
import { type Definitions, parseDefinitionsYaml, resolveDefinitions } from "@tessera/transforms";

/**
 * Loads feature definitions: YAML, or a module whose default (or `definitions`) export is a spec or
 * the result of defineDefinitions. TypeScript modules are compiled on the fly by tsx when it is
 * installed; in production, point at the compiled .js. Throws DefinitionError naming each field.
 */
export async function loadDefinitions(path: string): Promise<Definitions> {
  const ext = extname(path).toLowerCase();
  if (ext === ".yaml" || ext === ".yml") {
    const text = await readFile(path, "utf8").catch((error: NodeJS.ErrnoException) => {
      throw new ConfigError([`definitions: cannot read ${path} (${error.code ?? error.message})`]);
    });
    return parseDefinitionsYaml(text);
  }
  if (![".ts", ".mts", ".js", ".mjs"].includes(ext)) {
    throw new ConfigError([`definitions: ${path} is not .yaml, .yml, .ts, .mts, .js or .mjs`]);
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

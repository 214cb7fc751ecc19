/**
 * The one way a service or the CLI reads a definitions file, so every entry point accepts the same
 * file types and reports the same errors (docs/definitions.md).
 */
import { readFile } from "node:fs/promises";
import { extname, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import {
  DefinitionError,
  type DefinitionIssue,
  type Definitions,
  parseDefinitionsYaml,
  resolveDefinitions,
} from "@tessera/transforms";

/** The file types a definitions path may have: YAML (JSON is YAML) or a module. */
export const definitionsFileTypes = [".yaml", ".yml", ".json", ".ts", ".mts", ".js", ".mjs"] as const;

/**
 * Why definitions could not be loaded: `usage` (not a definitions file type), `unreadable` (missing
 * file, a module that fails to load or exports nothing) or `invalid` (each issue names its field).
 */
export type DefinitionsProblem = "usage" | "unreadable" | "invalid";

export class DefinitionsLoadError extends Error {
  override name = "DefinitionsLoadError";
  constructor(
    message: string,
    readonly problem: DefinitionsProblem,
    readonly issues: readonly DefinitionIssue[] = [],
  ) {
    super(message);
  }
}

/**
 * Definitions from YAML/JSON, or a module whose default (or `definitions`) export is the result of
 * defineDefinitions(...) or a plain spec. TypeScript modules are compiled on the fly by tsx when it
 * is installed; in production, point at the compiled .js.
 */
export async function loadDefinitions(path: string): Promise<Definitions> {
  const ext = extname(path).toLowerCase();
  if (!(definitionsFileTypes as readonly string[]).includes(ext)) {
    throw new DefinitionsLoadError(
      `${path}: definitions must be ${definitionsFileTypes.slice(0, -1).join(", ")} or ${definitionsFileTypes.at(-1)}`,
      "usage",
    );
  }
  try {
    if (ext === ".yaml" || ext === ".yml" || ext === ".json") {
      const text = await readFile(path, "utf8").catch((error: NodeJS.ErrnoException) => {
        throw new DefinitionsLoadError(
          `${path}: cannot read the definitions file (${error.code ?? error.message})`,
          "unreadable",
        );
      });
      return parseDefinitionsYaml(text);
    }
    const url = pathToFileURL(resolve(path)).href;
    let module: Record<string, unknown>;
    try {
      module = ext.endsWith("ts")
        ? await (await import("tsx/esm/api")).tsImport(url, import.meta.url)
        : await import(url);
    } catch (error) {
      // defineDefinitions throws DefinitionError while the module loads: that is invalid, not unreadable.
      if (error instanceof DefinitionError) throw error;
      throw new DefinitionsLoadError(
        `${path}: cannot load the module: ${(error as Error).message}`,
        "unreadable",
      );
    }
    const exported = module["default"] ?? module["definitions"];
    if (exported === undefined) {
      throw new DefinitionsLoadError(
        `${path}: export the definitions as default (or as \`definitions\`)`,
        "unreadable",
      );
    }
    return resolveDefinitions(exported);
  } catch (error) {
    if (error instanceof DefinitionError) {
      const lines = error.issues.map((issue) => `  ${issue.path}: ${issue.message}`);
      throw new DefinitionsLoadError(
        `${path}: invalid definitions\n${lines.join("\n")}`,
        "invalid",
        error.issues,
      );
    }
    throw error;
  }
}

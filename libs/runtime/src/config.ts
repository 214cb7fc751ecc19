/**
 * Service configuration: defaults from a JSON Schema, then a YAML/JSON file, then environment
 * variables, validated once at start with errors that name the field and where its value came from.
 *
 * Env names are derived from the schema: with prefix TESSERA_PROCESSOR, `flush.everyEvents` is read
 * from TESSERA_PROCESSOR_FLUSH_EVERY_EVENTS. Arrays take comma-separated values.
 */
import { readFileSync } from "node:fs";
import { Ajv, type ErrorObject } from "ajv";
import { parse as parseYaml } from "yaml";
import { deepMerge } from "./schema.js";

export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
  }
}

export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  required?: string[];
  default?: unknown;
  description?: string;
  [keyword: string]: unknown;
}

export interface LoadConfigOptions {
  schema: JsonSchema;
  /** Env var prefix, e.g. TESSERA_PROCESSOR. */
  envPrefix: string;
  /** Path of a YAML or JSON file; optional. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Values that win over everything (e.g. command-line flags). */
  overrides?: Record<string, unknown>;
}

const snake = (key: string) => key.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();

export function envName(prefix: string, path: string[]): string {
  return [prefix, ...path.map(snake)].join("_");
}

/** Every leaf of the schema with its env var name. */
function leaves(schema: JsonSchema, path: string[] = []): Array<{ path: string[]; schema: JsonSchema }> {
  if (schema.type === "object" && schema.properties) {
    return Object.entries(schema.properties).flatMap(([key, child]) => leaves(child, [...path, key]));
  }
  return [{ path, schema }];
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    if (typeof node[key] !== "object" || node[key] === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

function readFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigError([
      `config file ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    ]);
  }
  try {
    const parsed = file.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
    return (parsed ?? {}) as Record<string, unknown>;
  } catch (error) {
    throw new ConfigError([
      `config file ${file} is not valid ${file.endsWith(".json") ? "JSON" : "YAML"}: ${(error as Error).message}`,
    ]);
  }
}

export function loadConfig<T>(options: LoadConfigOptions): T {
  const env = options.env ?? process.env;
  const origin = new Map<string, string>();
  let value: Record<string, unknown> = {};
  if (options.file) {
    value = readFile(options.file);
    for (const leaf of leaves(options.schema)) origin.set(leaf.path.join("."), `from ${options.file}`);
  }
  const fromEnv: Record<string, unknown> = {};
  for (const leaf of leaves(options.schema)) {
    const name = envName(options.envPrefix, leaf.path);
    const raw = env[name];
    if (raw === undefined || raw === "") continue;
    setPath(fromEnv, leaf.path, leaf.schema.type === "array" ? raw.split(",").map((s) => s.trim()) : raw);
    origin.set(leaf.path.join("."), `from ${name}`);
  }
  value = deepMerge(deepMerge(value, fromEnv), options.overrides ?? {});

  // Env values arrive as strings: coerce them to the schema's types, fill defaults, reject extras.
  const ajv = new Ajv({ allErrors: true, useDefaults: true, coerceTypes: "array", strict: false });
  const validate = ajv.compile(options.schema);
  if (!validate(value)) throw new ConfigError((validate.errors ?? []).map((e) => describe(e, origin)));
  return value as T;
}

function describe(error: ErrorObject, origin: Map<string, string>): string {
  const path = error.instancePath.split("/").filter(Boolean);
  if (error.keyword === "required") path.push(String(error.params["missingProperty"]));
  if (error.keyword === "additionalProperties") path.push(String(error.params["additionalProperty"]));
  const field = path.join(".") || "(root)";
  const where = origin.get(field);
  const message = error.keyword === "additionalProperties" ? "is not a known setting" : error.message;
  return `${field}: ${message}${where ? ` (${where})` : ""}`;
}

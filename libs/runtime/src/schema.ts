/**
 * Builders for config JSON Schemas, one spelling for every service: each field says its type, its
 * description, its default and its bounds, and loadConfig fills defaults and rejects the rest.
 */
import type { JsonSchema } from "./config.js";

/** A string; `extra` adds a default, `minLength`, `enum`, a `pattern`… */
export const str = (description: string, extra: JsonSchema = {}): JsonSchema => ({
  type: "string",
  description,
  ...extra,
});

/** An integer with a default, at least `minimum`. */
export const int = (description: string, dflt: number, minimum = 0, extra: JsonSchema = {}): JsonSchema => ({
  type: "integer",
  minimum,
  default: dflt,
  description,
  ...extra,
});

/** A number with a default, at least `minimum`. */
export const num = (description: string, dflt: number, minimum = 0, extra: JsonSchema = {}): JsonSchema => ({
  type: "number",
  minimum,
  default: dflt,
  description,
  ...extra,
});

export const bool = (description: string, dflt: boolean): JsonSchema => ({
  type: "boolean",
  default: dflt,
  description,
});

/** A list of non-empty strings (from the environment: comma-separated). */
export const strings = (description: string, dflt?: string[]): JsonSchema => ({
  type: "array",
  items: { type: "string", minLength: 1 },
  description,
  ...(dflt ? { default: dflt } : {}),
});

/** A section: only the named keys, filled with their defaults when absent. */
export const obj = (properties: Record<string, JsonSchema>, extra: JsonSchema = {}): JsonSchema => ({
  type: "object",
  additionalProperties: false,
  default: {},
  properties,
  ...extra,
});

/** A comma-separated environment value as a list (undefined when unset or empty). */
export const envList = (value: string | undefined): string[] | undefined =>
  value ? value.split(",").map((s) => s.trim()) : undefined;

/** `extra` over `base`, objects merged key by key; arrays and scalars replaced. */
export function deepMerge(
  base: Record<string, unknown>,
  extra: Record<string, unknown>,
): Record<string, unknown> {
  const out = { ...base };
  for (const [key, value] of Object.entries(extra)) {
    const current = out[key];
    out[key] =
      value && typeof value === "object" && !Array.isArray(value) && current && typeof current === "object"
        ? deepMerge(current as Record<string, unknown>, value as Record<string, unknown>)
        : value;
  }
  return out;
}

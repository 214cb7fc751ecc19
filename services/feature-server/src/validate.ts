/**
 * What any feature request may contain, checked at the edge of both protocols (HTTP after its JSON
 * schema, gRPC after decoding) before anything is resolved, read or cached. One function, so a
 * limit can never hold on one protocol and not the other. Errors name the field (docs/api.md).
 */
import { invalid } from "./errors.js";
import type { FeatureRequest } from "./serve.js";

export interface RequestLimits {
  /** Feature references per request. */
  maxFeatures: number;
  /** Entity ids per request, all keys together. */
  maxEntities: number;
  /** Nesting of lists/objects inside `context` (a scalar is depth 0). */
  maxContextDepth: number;
}

/** Characters (Unicode code points) in one feature reference. */
export const MAX_REFERENCE_LENGTH = 512;
/** Characters in one entity id or entity key name. */
export const MAX_ID_LENGTH = 256;

/**
 * A lone UTF-16 surrogate cannot be encoded as UTF-8: it would break a store key, a log line or a
 * protobuf field later, far from the request that brought it. Refused here instead.
 */
export function wellFormed(value: string): boolean {
  // In Unicode mode a paired surrogate is one astral code point; only a lone one is in Cs.
  return !LONE_SURROGATE.test(value);
}
const LONE_SURROGATE = /\p{Cs}/u;

/** Code points, without building an array: ≤ `max`? (A well-formed string has ≤ length of them.) */
function withinLength(value: string, max: number): boolean {
  if (value.length <= max) return true;
  if (value.length > 2 * max) return false;
  let n = 0;
  for (const _ of value) if (++n > max) return false;
  return true;
}

function checkText(value: unknown, field: string, max: number, what: string): void {
  if (typeof value !== "string" || value === "" || !withinLength(value, max)) {
    throw invalid(field, `must be a non-empty ${what} of at most ${max} characters`);
  }
  if (!wellFormed(value)) {
    throw invalid(field, "must be well-formed Unicode text (it contains a lone UTF-16 surrogate)");
  }
}

/** Depth-first over `context`: bounded nesting, every string (keys included) well-formed. */
function checkContext(value: unknown, field: string, depth: number, limits: RequestLimits): void {
  if (typeof value === "string") {
    if (!wellFormed(value)) throw invalid(field, "must be well-formed Unicode text (a lone surrogate)");
    return;
  }
  if (value === null || typeof value !== "object") return;
  if (depth >= limits.maxContextDepth) {
    throw invalid(field, `nests deeper than ${limits.maxContextDepth} levels`);
  }
  if (Array.isArray(value)) {
    value.forEach((item, i) => {
      checkContext(item, `${field}[${i}]`, depth + 1, limits);
    });
    return;
  }
  for (const [key, item] of Object.entries(value)) {
    if (!wellFormed(key)) throw invalid(field, "has a key that is not well-formed Unicode text");
    checkContext(item, `${field}.${key}`, depth + 1, limits);
  }
}

/** Throws an `invalid` ServeError naming the first offending field; returns the total id count. */
export function checkRequest(request: FeatureRequest, limits: RequestLimits): number {
  const { features, entities } = request;
  if (!Array.isArray(features) || features.length === 0) {
    throw invalid("features", "at least one feature reference is required");
  }
  if (features.length > limits.maxFeatures) {
    throw invalid("features", `more than ${limits.maxFeatures} feature references in one request`);
  }
  features.forEach((ref, i) => {
    checkText(ref, `features[${i}]`, MAX_REFERENCE_LENGTH, '"view:feature" reference');
  });

  if (entities === null || typeof entities !== "object" || Array.isArray(entities)) {
    throw invalid("entities", "must map entity key names to lists of ids");
  }
  const keys = Object.keys(entities);
  if (keys.length === 0) throw invalid("entities", "at least one entity key is required");
  let total = 0;
  for (const key of keys) {
    const field = `entities.${key}`;
    checkText(key, "entities", MAX_ID_LENGTH, "entity key name");
    const ids = entities[key];
    if (!Array.isArray(ids) || ids.length === 0) throw invalid(field, "must be a non-empty list of ids");
    if (ids.length > limits.maxEntities) {
      throw invalid(field, `more than ${limits.maxEntities} entity ids in one request`);
    }
    total += ids.length;
    // Before looking at any id: a huge request costs nothing more than this sum.
    if (total > limits.maxEntities) {
      throw invalid("entities", `more than ${limits.maxEntities} entity ids in one request`);
    }
    ids.forEach((id, i) => {
      checkText(id, `${field}[${i}]`, MAX_ID_LENGTH, "id");
    });
  }
  if (request.context !== undefined) {
    const { context } = request;
    if (context === null || typeof context !== "object" || Array.isArray(context)) {
      throw invalid("context", "must be an object");
    }
    checkContext(context, "context", 0, limits);
  }
  return total;
}

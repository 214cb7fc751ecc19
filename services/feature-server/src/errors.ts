/**
 * What a request can fail with, independent of the protocol: HTTP maps `kind` to a status code,
 * gRPC to a status. `field` names the offending part of the request (e.g. `entities.card_id[3]`).
 */
export type ServeErrorKind =
  | "invalid" // 400 / INVALID_ARGUMENT
  | "unauthenticated" // 401 / UNAUTHENTICATED
  | "forbidden" // 403 / PERMISSION_DENIED
  | "limited" // 429 / RESOURCE_EXHAUSTED
  | "unavailable"; // 503 / UNAVAILABLE

export class ServeError extends Error {
  override name = "ServeError";
  constructor(
    readonly kind: ServeErrorKind,
    message: string,
    readonly field?: string,
    /** Seconds a client should wait before retrying (limited, unavailable). */
    readonly retryAfterSeconds?: number,
    /** Machine-readable cause of a refusal callers may act on (e.g. fall back), and its view. */
    readonly reason?: { code: DegradedCode; view: string },
  ) {
    super(field ? `${field}: ${message}` : message);
  }
}

/**
 * Why a view is degraded: its data is older than its freshness SLA, the store is unreachable, or a
 * quality gate covering it (its own or a model's) has tripped.
 */
export type DegradedCode = "freshness_sla" | "store_unavailable" | "quality_gate";

export const invalid = (field: string, message: string) => new ServeError("invalid", message, field);

export const HTTP_STATUS: Record<ServeErrorKind, number> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  limited: 429,
  unavailable: 503,
};

/**
 * The client's types. A `FeatureSchema` describes a deployment's features: `tessera codegen client`
 * writes one from the definitions, so `getFeatures` checks feature names and entity keys at
 * compile time and types each value. Without one every name is a string and every value a
 * `FeatureValue`.
 */

/** What a feature value can be on the wire: numbers, text, booleans (on-demand), lists, or null. */
export type FeatureValue = number | string | boolean | null | FeatureValue[];

/**
 * A value's status. The server's statuses today, plus any it adds later (e.g. `quarantined` by a
 * quality gate), passed through as they come.
 */
export type FeatureStatus = "present" | "missing" | "stale" | "error" | "quarantined" | (string & {});

export interface FeatureSchema {
  /** "view:feature" → its value type (without null: a value may always be null). */
  features: Record<string, unknown>;
  /** view → the name of its entity key (the source's entity column). */
  entities: Record<string, string>;
}

/** No generated schema: any reference, any entity key. */
export interface UntypedSchema extends FeatureSchema {
  features: Record<string, FeatureValue>;
  entities: Record<string, string>;
}

type Names<S extends FeatureSchema> = keyof S["features"] & string;
type Views<S extends FeatureSchema> = keyof S["entities"] & string;

/** A feature reference: "view:feature", or "view:*" for all the view's features. */
export type FeatureRef<S extends FeatureSchema> = Names<S> | `${Views<S>}:*`;

/** The feature names a reference stands for (any "view:…" name without a generated schema). */
export type Expand<S extends FeatureSchema, R extends string> =
  string extends Names<S>
    ? R extends `${infer V}:*`
      ? `${V}:${string}`
      : R
    : R extends `${infer V}:*`
      ? Extract<Names<S>, `${V}:${string}`>
      : Extract<R, Names<S>>;

type ViewOf<R extends string> = R extends `${infer V}:${string}` ? V : never;

/** The entity key names the referenced views need. */
export type EntityKeyOf<S extends FeatureSchema, R extends string> = S["entities"][ViewOf<R> & Views<S>] &
  string;

/** Ids per entity key, for every key the referenced views use. */
export type EntityIds<S extends FeatureSchema, R extends string> = {
  [K in EntityKeyOf<S, R>]: readonly string[];
};

export interface FeatureResult<V = FeatureValue> {
  value: V | null;
  status: FeatureStatus;
}

/** One entity's features, keyed by "view:feature". */
export type EntityFeatures<S extends FeatureSchema, R extends string> = {
  [N in Expand<S, R>]: FeatureResult<S["features"][N]>;
};

export interface EntityResult<S extends FeatureSchema, R extends string> {
  /** The entity key name, e.g. card_id. */
  key: string;
  id: string;
  features: EntityFeatures<S, R>;
}

/**
 * A view's state as served. `degraded` and any further fields the server sends (a quality gate's
 * verdict, a degraded reason) are passed through unchanged.
 */
export interface ViewStatus {
  /** The definition version the values were computed with (HTTP only: the gRPC response has none). */
  version?: string;
  /** The newest event time across the returned entities (freshness), or null. */
  newestEventTime: number | null;
  degraded?: unknown;
  /** Quality gates covering the view that are not ok (values `quarantined`, unless overridden). */
  gates?: GateInfo[];
  [field: string]: unknown;
}

/** A quality gate as the server reports it. */
export interface GateInfo {
  /** `view:<name>` or `model:<name>`. */
  subject: string;
  state: "tripped" | "acked" | "overridden" | (string & {});
  causes: string[];
  since: number;
  /** overridden: served normally until then (epoch ms). */
  overrideUntil?: number;
  onTrip: "quarantine" | "refuse" | (string & {});
  incident?: string;
}

export interface GetFeaturesRequest<
  S extends FeatureSchema,
  R extends string,
  E extends EntityIds<S, R> = EntityIds<S, R>,
> {
  features: readonly R[];
  /** Entity key name → ids, for every entity key the referenced views use. */
  entities: E;
  /** Evaluate as of this time (epoch ms or a Date) instead of now. */
  at?: number | Date;
  /** Request context for on-demand features. */
  context?: Record<string, FeatureValue>;
  /** Overrides the client's deadline for this call. */
  deadlineMs?: number;
  signal?: AbortSignal;
}

export interface GetFeaturesResult<
  S extends FeatureSchema,
  R extends string,
  E extends EntityIds<S, R> = EntityIds<S, R>,
> {
  /** The time the windows were evaluated at (epoch ms). */
  asOf: number;
  views: Record<string, ViewStatus>;
  /** Per entity key of the request, one result per requested id, in request order. */
  entities: { [K in keyof E]: Array<EntityResult<S, R>> };
  /** True when a value is not `present`/`missing`, or a view reports itself degraded. */
  degraded: boolean;
  /** Attempts made (1 without retries or hedges). */
  attempts: number;
  /** The features of one entity, or undefined when it was not requested. */
  entity(key: keyof E & string, id: string): EntityFeatures<S, R> | undefined;
}

/** The server's JSON response (POST /v1/features), which the gRPC transport produces too. */
export interface WireResponse {
  asOf: number;
  views: Record<string, ViewStatus>;
  entities: Record<
    string,
    { features: string[]; results: Array<{ id: string; values: unknown[]; statuses: string[] }> }
  >;
}

export interface WireRequest {
  features: string[];
  entities: Record<string, string[]>;
  at?: number;
  context?: Record<string, FeatureValue>;
}

export type ErrorCode =
  | "invalid"
  | "unauthenticated"
  | "forbidden"
  | "limited"
  | "unavailable"
  | "deadline"
  | "cancelled"
  | "internal"
  | "protocol";

/** Why a call failed: a 4xx names the request field; `retriable` says whether trying later may help. */
export class TesseraClientError extends Error {
  override name = "TesseraClientError";
  readonly code: ErrorCode;
  /** HTTP status, when the server answered over HTTP. */
  readonly status?: number;
  /** gRPC status code, when it answered over gRPC. */
  readonly grpcCode?: number;
  /** The offending part of the request, e.g. entities.card_id[3]. */
  readonly field?: string;
  /** The server's Retry-After, in ms. */
  readonly retryAfterMs?: number;
  /**
   * Why a view was refused, when the server says (`quality_gate`: a tripped gate whose policy is
   * refuse; `freshness_sla`: data past its SLA), and which view: the caller's cue to fall back.
   * Such a refusal is not retried (it holds until the gate or the pipeline changes).
   */
  readonly reason?: string;
  readonly view?: string;
  readonly retriable: boolean;
  /** Attempts made before giving up. */
  attempts = 1;

  constructor(
    code: ErrorCode,
    message: string,
    details: {
      status?: number;
      grpcCode?: number;
      field?: string;
      retryAfterMs?: number;
      reason?: string;
      view?: string;
      retriable?: boolean;
      cause?: unknown;
    } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.status = details.status;
    this.grpcCode = details.grpcCode;
    this.field = details.field;
    this.retryAfterMs = details.retryAfterMs;
    if (details.reason !== undefined) this.reason = details.reason;
    if (details.view !== undefined) this.view = details.view;
    this.retriable = details.retriable ?? false;
  }
}

/** One attempt of one call, over HTTP or gRPC. */
export interface Transport {
  call(
    request: WireRequest,
    options: { signal: AbortSignal; deadline: number; headers: Record<string, string> },
  ): Promise<WireResponse>;
  close(): Promise<void>;
}

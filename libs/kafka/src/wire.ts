// Generated from schemas/avro/*.avsc by scripts/codegen/wire-types.ts: do not edit, run
// `npm run codegen:wire` after changing a schema.

/** A record a Tessera service could not use, kept byte for byte with where it came from and why. */
export interface DeadLetterRecord {
  topic: string;
  partition: number;
  offset: number;
  key: null | Buffer;
  /** The original bytes, exactly as read. */
  value: null | Buffer;
  headers: Record<string, Buffer>;
  /** Machine-readable: decode_error, schema_mismatch, missing_field, late, future, ... */
  reason: string;
  /** Human-readable explanation, naming the field where there is one. */
  detail: string;
  service: string;
  /** Epoch milliseconds. */
  failed_at: number;
}

export type AlertStatus = "FIRING" | "RESOLVED";

export type AlertKind = "FEATURE_DRIFT" | "PREDICTION_DRIFT" | "FRESHNESS" | "ACCURACY";

export type Severity = "OK" | "WARN" | "CRITICAL";

/** Published when a monitored statistic crosses a threshold (FIRING) and again when it clears (RESOLVED). */
export interface DriftAlertRecord {
  /** Stable for one incident: FIRING and its RESOLVED share it. */
  alert_id: string;
  status: AlertStatus;
  kind: AlertKind;
  severity: Severity;
  /** view:feature, model name, or source topic. */
  subject: string;
  /** psi, ks, chi_squared, js, freshness_seconds, accuracy, ... */
  statistic: string;
  value: number;
  threshold: number;
  p_value: null | number;
  /** Epoch milliseconds. */
  window_start: number;
  /** Epoch milliseconds. */
  window_end: number;
  sample_size: number;
  /** Which reference profile the window was tested against. */
  reference: string;
  /** One line for a human on call. */
  message: string;
  /** Epoch milliseconds. */
  at: number;
  /** W3C trace id (hex) of the tested window's newest traced record: follow it back to the flush and the events. */
  trace_id: null | string;
  /** W3C span id (hex) in that trace: the alert's own span when the worker traces, else the record's. */
  span_id: null | string;
}

/** Published by the stream processor after each flush: the finalised values of one entity's view, for drift workers. */
export interface FeatureUpdateRecord {
  view: string;
  /** Hash of the normalised view definition. */
  version: string;
  entity: string;
  /** Newest event time applied for this entity. (epoch ms) */
  event_time: number;
  /** The time t the values were finalised at. (epoch ms) */
  computed_at: number;
  /** Feature name to value; null for an empty window of ops other than count and sum. */
  values: Record<string, null | number | string | (null | number | string)[]>;
}

/** Ground truth for a prediction, often arriving late (a chargeback days after the payment). */
export interface LabelRecord {
  /** Join key when known; else entity + time. */
  prediction_id: null | string;
  model: string;
  entity: string;
  /** A numeric target, a class, or a yes/no outcome. */
  label: number | string | boolean;
  /** Time of the labelled event (the prediction's time). (epoch ms) */
  event_time: number;
  /** Epoch milliseconds. */
  labelled_at: number;
}

/** Example source event: one card payment. The entity key is card_id; event_time is when it happened. */
export interface PaymentTransactionRecord {
  /** Unique per payment; lets consumers de-duplicate. */
  transaction_id: string;
  card_id: string;
  merchant_id: string;
  /** In the currency's major unit. */
  amount: number;
  /** ISO 4217 code. */
  currency: string;
  /** ISO 3166-1 alpha-2 code of the merchant. */
  country: string;
  /** Epoch milliseconds. */
  event_time: number;
}

/** One model output, published by an inference service. A score, a class, or both. */
export interface PredictionRecord {
  /** Labels join on this id when they have it. */
  prediction_id: string;
  model: string;
  model_version: string;
  entity: string;
  score: null | number;
  class: null | string;
  /** Epoch milliseconds. */
  event_time: number;
}

/** A feature vector as the feature server served it (a sampled share), for the consistency check and drift. */
export interface ServedFeaturesRecord {
  request_id: string;
  view: string;
  /** Definition version the values were computed with. */
  version: string;
  entity: string;
  /** The time the windows were finalised at. (epoch ms) */
  as_of: number;
  values: Record<string, null | number | string | (null | number | string)[]>;
  /** Epoch milliseconds. */
  served_at: number;
}

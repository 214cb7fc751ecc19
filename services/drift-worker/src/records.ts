/**
 * Decoded Avro values → the worker's input types, checked field by field. The registry already
 * validated the writer's schema; this catches a topic carrying another record type, and
 * normalises what Avro libraries disagree on (timestamps as Date or long, wrapped unions).
 */
import type { FeatureUpdateRecord, LabelRecord, PredictionRecord } from "@tessera/kafka";

type FeatureValue = FeatureUpdateRecord["values"][string];

export class RecordError extends Error {
  override name = "RecordError";
  constructor(
    readonly reason: "missing_field" | "schema_mismatch",
    message: string,
  ) {
    super(message);
  }
}

type Obj = Record<string, unknown>;

/** A wrapped union branch ({"double": 1}) unwrapped; anything else as it is. */
function unwrap(value: unknown): unknown {
  if (value && typeof value === "object" && !Array.isArray(value) && !(value instanceof Date)) {
    const keys = Object.keys(value);
    if (keys.length === 1 && ["double", "string", "boolean", "array", "long", "int"].includes(keys[0]!))
      return (value as Obj)[keys[0]!];
  }
  return value;
}

function field(record: Obj, name: string): unknown {
  if (!(name in record)) throw new RecordError("missing_field", `missing field "${name}"`);
  return unwrap(record[name]);
}

function text(record: Obj, name: string): string {
  const v = field(record, name);
  if (typeof v !== "string") throw new RecordError("schema_mismatch", `field "${name}" is not a string`);
  return v;
}

function optionalText(record: Obj, name: string): string | null {
  const v = name in record ? unwrap(record[name]) : null;
  if (v === null || v === undefined) return null;
  if (typeof v !== "string") throw new RecordError("schema_mismatch", `field "${name}" is not a string`);
  return v;
}

function millis(record: Obj, name: string): number {
  const v = field(record, name);
  const ms = v instanceof Date ? v.getTime() : typeof v === "bigint" ? Number(v) : v;
  if (typeof ms !== "number" || !Number.isFinite(ms))
    throw new RecordError("schema_mismatch", `field "${name}" is not a timestamp`);
  return ms;
}

function object(value: unknown): Obj {
  if (!value || typeof value !== "object" || Array.isArray(value))
    throw new RecordError("schema_mismatch", "the record is not an object");
  return value as Obj;
}

function featureValue(name: string, value: unknown): FeatureValue {
  const v = unwrap(value);
  if (v === null || typeof v === "number" || typeof v === "string") return v;
  if (Array.isArray(v)) return v.map((item) => featureValue(name, item) as null | number | string);
  throw new RecordError("schema_mismatch", `values["${name}"] is neither null, a number, text nor a list`);
}

export function toFeatureUpdate(value: unknown): FeatureUpdateRecord {
  const r = object(value);
  const raw = field(r, "values");
  const values: Record<string, FeatureValue> = {};
  const entries = raw instanceof Map ? [...raw.entries()] : Object.entries(object(raw));
  for (const [name, v] of entries) values[String(name)] = featureValue(String(name), v);
  return {
    view: text(r, "view"),
    version: text(r, "version"),
    entity: text(r, "entity"),
    event_time: millis(r, "event_time"),
    computed_at: millis(r, "computed_at"),
    values,
  };
}

export function toPrediction(value: unknown): PredictionRecord {
  const r = object(value);
  const score = "score" in r ? unwrap(r["score"]) : null;
  if (score !== null && score !== undefined && typeof score !== "number")
    throw new RecordError("schema_mismatch", `field "score" is not a number`);
  const prediction: PredictionRecord = {
    prediction_id: text(r, "prediction_id"),
    model: text(r, "model"),
    model_version: text(r, "model_version"),
    entity: text(r, "entity"),
    score: typeof score === "number" ? score : null,
    class: optionalText(r, "class"),
    event_time: millis(r, "event_time"),
  };
  if (prediction.score === null && prediction.class === null)
    throw new RecordError("missing_field", `a prediction needs "score" or "class"`);
  return prediction;
}

export function toLabel(value: unknown): LabelRecord {
  const r = object(value);
  const label = field(r, "label");
  if (typeof label !== "number" && typeof label !== "string" && typeof label !== "boolean")
    throw new RecordError("schema_mismatch", `field "label" is not a number, text or boolean`);
  return {
    prediction_id: optionalText(r, "prediction_id"),
    model: text(r, "model"),
    entity: text(r, "entity"),
    label,
    event_time: millis(r, "event_time"),
    labelled_at: millis(r, "labelled_at"),
  };
}

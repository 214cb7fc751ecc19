/**
 * The feature routes' 200 body as JSON text, written by hand. The response schema in http.ts stays
 * the contract (OpenAPI, and what this must equal: test/response-json.test.ts). Its compiled
 * serialiser stringifies each value generically (`values` may hold any JSON value) and checks each
 * status for escapes: 129 µs of a 100-entity response on the bench view in the server's profile,
 * 94 µs here. Most of what is left is turning doubles into text, which any JSON answer pays.
 */
import type { FeatureValue } from "@tessera/transforms";
import type { GateVerdict } from "./gate.js";
import type { DegradedReason, EntityGroupResult, FeatureResponse, Status, ViewInfo } from "./serve.js";

const STATUS_JSON: Record<Status, string> = {
  present: '"present"',
  missing: '"missing"',
  stale: '"stale"',
  quarantined: '"quarantined"',
  error: '"error"',
};

/** As the schema's `integer`: a whole number, truncated. */
const integer = (n: number) => String(Math.trunc(n));

function value(v: FeatureValue): string {
  if (typeof v === "number") return Number.isFinite(v) ? String(v) : "null";
  if (v === null || v === undefined) return "null";
  if (typeof v === "boolean") return v ? "true" : "false";
  return JSON.stringify(v); // text and lists
}

// Reasons and gates are rare (a degraded view): their schema's fields, picked, through JSON.stringify.
const reasonOf = ({ code, message, subject, ageMs, maxAgeMs }: DegradedReason) => ({
  code,
  message,
  subject,
  ageMs,
  maxAgeMs,
});
const gateOf = ({ subject, state, causes, since, overrideUntil, onTrip, incident }: GateVerdict) => ({
  subject,
  state,
  causes,
  since,
  overrideUntil,
  onTrip,
  incident,
});

function view(info: ViewInfo): string {
  const newest = info.newestEventTime === null ? "null" : integer(info.newestEventTime);
  const reasons = info.reasons.length === 0 ? "[]" : JSON.stringify(info.reasons.map(reasonOf));
  let out = `{"version":${JSON.stringify(info.version)},"newestEventTime":${newest},"degraded":${info.degraded},"reasons":${reasons}`;
  if (info.gates !== undefined) out += `,"gates":${JSON.stringify(info.gates.map(gateOf))}`;
  return `${out}}`;
}

function group(result: EntityGroupResult): string {
  let out = `{"features":${JSON.stringify(result.features)},"results":[`;
  const rows = result.results;
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    if (r > 0) out += ",";
    out += `{"id":${JSON.stringify(row.id)},"values":[`;
    const { values, statuses } = row;
    for (let i = 0; i < values.length; i++) out += i === 0 ? value(values[i]!) : `,${value(values[i]!)}`;
    out += '],"statuses":[';
    for (let i = 0; i < statuses.length; i++)
      out += i === 0 ? STATUS_JSON[statuses[i]!] : `,${STATUS_JSON[statuses[i]!]}`;
    out += "]}";
  }
  return `${out}]}`;
}

export function featureResponseJson(response: FeatureResponse): string {
  let views = "";
  for (const [name, info] of Object.entries(response.views))
    views += `${views === "" ? "" : ","}${JSON.stringify(name)}:${view(info)}`;
  let entities = "";
  for (const [key, result] of Object.entries(response.entities))
    entities += `${entities === "" ? "" : ","}${JSON.stringify(key)}:${group(result)}`;
  return `{"asOf":${integer(response.asOf)},"views":{${views}},"entities":{${entities}}}`;
}

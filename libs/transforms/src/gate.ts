/**
 * The quality gate's state machine, pure: what a gate becomes when a cause is observed active or
 * clear, and when its owner acknowledges, overrides (for a bounded time) or releases it. The drift
 * worker applies `observe`, operators `ack`/`override`/`release`; the result is published on the
 * compacted gate topic, and every feature server serves `effective(state, now)` (an override
 * expires by itself at read time, without anyone writing).
 */

export const GATE_CAUSES = ["freshness_sla", "drift_critical", "accuracy_floor", "manual"] as const;
export type GateCause = (typeof GATE_CAUSES)[number];

export const GATE_STATES = ["ok", "tripped", "acked", "overridden"] as const;
export type GateStatus = (typeof GATE_STATES)[number];

/** What the feature server does with a tripped gate's views: mark values `quarantined`, or 503. */
export type OnTrip = "quarantine" | "refuse";

/** One audited change: who did it, when, why. */
export interface GateAction {
  action: "trip" | "cause" | "clear" | "ack" | "override" | "release";
  by: string;
  at: number;
  note?: string;
  cause?: GateCause;
  /** override: until when (epoch ms). */
  until?: number;
}

export interface GateState {
  /** `view:<name>` or `model:<name>`: the topic's key. */
  subject: string;
  state: GateStatus;
  /** The causes active now (empty once every cause has cleared, while the hysteresis runs). */
  causes: GateCause[];
  /** When the gate tripped (or last became ok). */
  since: number;
  /** Every cause clear since then: the gate clears once this is `clearAfterMs` old. */
  clearingSince?: number;
  /** overridden: served normally until then (epoch ms). */
  overrideUntil?: number;
  /** The drift worker's incident that tripped it, for the runbook's cross-reference. */
  incident?: string;
  /** The last action: who, when, why. */
  by: string;
  at: number;
  note?: string;
  /** The latest actions, oldest first (bounded: the compacted topic keeps only the last value). */
  log: GateAction[];
}

export interface GateOptions {
  /** Hysteresis: every cause must stay clear this long before the gate clears by itself. */
  clearAfterMs: number;
  /** Longest override an owner may grant. */
  maxOverrideMs: number;
}

export const DEFAULT_GATE_OPTIONS: GateOptions = { clearAfterMs: 60_000, maxOverrideMs: 24 * 3_600_000 };

/** Actions kept in a state's log. */
export const GATE_LOG_LENGTH = 20;

/** An action refused: not tripped, a missing reason, an override too long. Names the field. */
export class GateError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

const SUBJECT = /^(view|model):[A-Za-z_][A-Za-z0-9_.-]*$/;

export function gateSubject(kind: "view" | "model", name: string): string {
  const subject = `${kind}:${name}`;
  if (!SUBJECT.test(subject))
    throw new GateError("subject", `${JSON.stringify(subject)} is not view:<name> or model:<name>`);
  return subject;
}

/** Checks a subject typed by a person (CLI, HTTP): `view:<name>` or `model:<name>`. */
export function parseGateSubject(text: string): { kind: "view" | "model"; name: string } {
  if (!SUBJECT.test(text))
    throw new GateError("subject", `${JSON.stringify(text)} is not view:<name> or model:<name>`);
  const at = text.indexOf(":");
  return { kind: text.slice(0, at) as "view" | "model", name: text.slice(at + 1) };
}

const logged = (state: GateState, action: GateAction): GateAction[] =>
  [...state.log, action].slice(-GATE_LOG_LENGTH);

const tripped = (state: GateState | undefined): GateState | undefined =>
  state !== undefined && state.state !== "ok" ? state : undefined;

/** The state as served at `now`: an override past its end is an acknowledged trip again. */
export function effective(state: GateState, now: number): GateState {
  if (state.state !== "overridden" || state.overrideUntil === undefined || now < state.overrideUntil)
    return state;
  const { overrideUntil: _, ...rest } = state;
  return { ...rest, state: "acked" };
}

/** True when the gate's views are served as usual at `now` (ok, or an override in force). */
export const servesNormally = (state: GateState | undefined, now: number): boolean =>
  state === undefined || ["ok", "overridden"].includes(effective(state, now).state);

export interface Observation {
  cause: GateCause;
  /** True while the cause holds (incident open, SLA breached, accuracy under the floor). */
  active: boolean;
  at: number;
  /** Who observed it, e.g. `drift-worker`. */
  by: string;
  incident?: string;
  note?: string;
}

/**
 * A cause observed active or clear. Active trips an untripped gate (an acked or overridden one
 * stays as its owner left it: no re-page). Clear removes the cause; once every cause has stayed
 * clear for `clearAfterMs` the gate is ok again. Returns `prev` itself when nothing changed, so a
 * caller publishes only changes.
 */
export function observe(
  prev: GateState | undefined,
  subject: string,
  seen: Observation,
  options: GateOptions = DEFAULT_GATE_OPTIONS,
): GateState | undefined {
  const { cause, active, at, by } = seen;
  const extra = { ...(seen.note ? { note: seen.note } : {}) };
  const was = tripped(prev);
  if (active) {
    if (!was) {
      const action: GateAction = { action: "trip", by, at, cause, ...extra };
      return {
        subject,
        state: "tripped",
        causes: [cause],
        since: at,
        ...(seen.incident ? { incident: seen.incident } : {}),
        by,
        at,
        ...extra,
        log: [...(prev?.log ?? []), action].slice(-GATE_LOG_LENGTH),
      };
    }
    if (was.causes.includes(cause) && was.clearingSince === undefined) return was;
    const { clearingSince: _, ...rest } = was;
    const added = !was.causes.includes(cause);
    return {
      ...rest,
      causes: added ? [...was.causes, cause] : was.causes,
      ...(seen.incident && !was.incident ? { incident: seen.incident } : {}),
      log: added ? logged(was, { action: "cause", by, at, cause, ...extra }) : was.log,
    };
  }
  if (!was) return prev;
  const causes = was.causes.filter((c) => c !== cause);
  if (causes.length > 0) return causes.length === was.causes.length ? was : { ...was, causes };
  const clearingSince = was.clearingSince ?? at;
  if (at - clearingSince < options.clearAfterMs) {
    return causes.length === was.causes.length && was.clearingSince !== undefined
      ? was
      : { ...was, causes, clearingSince };
  }
  const note = `every cause clear for ${Math.round((at - clearingSince) / 1000)} s`;
  return cleared(was, subject, "clear", by, at, note);
}

/** An operator's action: who (a person or key id) and why are required — it is the audit. */
export interface OperatorAction {
  by: string;
  at: number;
  note: string;
}

function operator(prev: GateState | undefined, action: OperatorAction, now: number): GateState {
  if (!action.by?.trim()) throw new GateError("by", "is required (who acts)");
  if (!action.note?.trim()) throw new GateError("reason", "is required (why)");
  const was = tripped(prev);
  if (!was) throw new GateError("subject", `${prev?.subject ?? "the gate"} is not tripped`);
  return effective(was, now);
}

/** The owner has seen it: still tripped (values still quarantined or refused), not paged again. */
export function ack(prev: GateState | undefined, action: OperatorAction): GateState {
  const state = operator(prev, action, action.at);
  if (state.state === "overridden")
    throw new GateError(
      "subject",
      `${state.subject} is overridden until ${new Date(state.overrideUntil!).toISOString()}; release or wait`,
    );
  const { by, at, note } = action;
  return { ...state, state: "acked", by, at, note, log: logged(state, { action: "ack", by, at, note }) };
}

/** Serve normally for `forMs` (bounded by `maxOverrideMs`); then the gate is an acked trip again. */
export function override(
  prev: GateState | undefined,
  action: OperatorAction & { forMs: number },
  options: GateOptions = DEFAULT_GATE_OPTIONS,
): GateState {
  const state = operator(prev, action, action.at);
  const { by, at, note, forMs } = action;
  if (!Number.isInteger(forMs) || forMs <= 0) throw new GateError("for", "must be a positive duration");
  if (forMs > options.maxOverrideMs)
    throw new GateError(
      "for",
      `must be at most ${options.maxOverrideMs / 1000} s (the longest override allowed)`,
    );
  const until = at + forMs;
  return {
    ...state,
    state: "overridden",
    overrideUntil: until,
    by,
    at,
    note,
    log: logged(state, { action: "override", by, at, note, until }),
  };
}

/** The owner decides it is fine: ok now (a cause still active trips it again when next observed). */
export function release(prev: GateState | undefined, action: OperatorAction): GateState {
  const state = operator(prev, action, action.at);
  return cleared(state, state.subject, "release", action.by, action.at, action.note);
}

/** The gate back to ok from `was`, with the clearing (automatic or released) in its log. */
function cleared(
  was: Parameters<typeof logged>[0],
  subject: string,
  how: "clear" | "release",
  by: string,
  at: number,
  note: string,
): GateState {
  return {
    subject,
    state: "ok",
    causes: [],
    since: at,
    by,
    at,
    note,
    log: logged(was, { action: how, by, at, note }),
  };
}

// ── Wire form: JSON on the compacted topic ──────────────────────────────────────────────────

export const encodeGateState = (state: GateState): string => JSON.stringify(state);

/** Parses and checks a gate record; throws a GateError naming the field that is wrong. */
export function parseGateState(text: string): GateState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new GateError("(value)", "is not JSON");
  }
  if (typeof raw !== "object" || raw === null) throw new GateError("(value)", "must be an object");
  const value = raw as Record<string, unknown>;
  const need = (key: string, ok: boolean) => {
    if (!ok) throw new GateError(key, `invalid: ${JSON.stringify(value[key])}`);
  };
  const num = (key: string, optional = false) =>
    need(key, (optional && value[key] === undefined) || Number.isFinite(value[key]));
  need("subject", typeof value["subject"] === "string" && SUBJECT.test(value["subject"] as string));
  need("state", GATE_STATES.includes(value["state"] as GateStatus));
  need(
    "causes",
    Array.isArray(value["causes"]) && value["causes"].every((c) => GATE_CAUSES.includes(c as GateCause)),
  );
  num("since");
  num("at");
  num("clearingSince", true);
  num("overrideUntil", true);
  need("overrideUntil", value["state"] !== "overridden" || value["overrideUntil"] !== undefined);
  need("by", typeof value["by"] === "string");
  need("log", Array.isArray(value["log"]));
  return value as unknown as GateState;
}

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ackGate,
  effectiveGate,
  encodeGateState,
  GATE_LOG_LENGTH,
  GateError,
  type GateState,
  observeGate,
  overrideGate,
  parseGateState,
  parseGateSubject,
  releaseGate,
  servesNormally,
  validateDefinitions,
} from "../src/index.js";

const options = { clearAfterMs: 60_000, maxOverrideMs: 3_600_000 };
const subject = "view:card_activity";
const seen = (cause: "freshness_sla" | "drift_critical" | "accuracy_floor", active: boolean, at: number) => ({
  cause,
  active,
  at,
  by: "drift-worker",
});
const op = (at: number) => ({ by: "alice", at, note: "looking into it" });

describe("gate state machine", () => {
  it("a cause trips an untripped gate; repeating it changes nothing (returns the same state)", () => {
    const tripped = observeGate(
      undefined,
      subject,
      { ...seen("drift_critical", true, 1000), incident: "inc-1" },
      options,
    )!;
    expect(tripped).toMatchObject({
      subject,
      state: "tripped",
      causes: ["drift_critical"],
      since: 1000,
      incident: "inc-1",
    });
    expect(observeGate(tripped, subject, seen("drift_critical", true, 2000), options)).toBe(tripped);
    expect(observeGate(undefined, subject, seen("drift_critical", false, 2000), options)).toBeUndefined();
  });

  it("clears only after every cause has stayed clear for clearAfterMs (hysteresis)", () => {
    let s = observeGate(undefined, subject, seen("drift_critical", true, 0), options);
    s = observeGate(s, subject, seen("freshness_sla", true, 10), options);
    expect(s!.causes).toEqual(["drift_critical", "freshness_sla"]);
    s = observeGate(s, subject, seen("drift_critical", false, 20), options);
    expect(s).toMatchObject({ state: "tripped", causes: ["freshness_sla"] });
    s = observeGate(s, subject, seen("freshness_sla", false, 30), options);
    expect(s).toMatchObject({ state: "tripped", causes: [], clearingSince: 30 });
    s = observeGate(s, subject, seen("freshness_sla", false, 30 + 59_999), options);
    expect(s!.state).toBe("tripped");
    // Flaps back: the clock restarts.
    s = observeGate(s, subject, seen("freshness_sla", true, 40_000), options);
    expect(s!.clearingSince).toBeUndefined();
    s = observeGate(s, subject, seen("freshness_sla", false, 50_000), options);
    s = observeGate(s, subject, seen("freshness_sla", false, 100_000), options);
    expect(s!.state).toBe("tripped");
    s = observeGate(s, subject, seen("freshness_sla", false, 110_000), options);
    expect(s).toMatchObject({ state: "ok", causes: [] });
    expect(s!.log.map((a) => a.action)).toEqual(["trip", "cause", "cause", "clear"]); // the flap re-adds its cause;
  });

  it("ack keeps the gate tripped (not served normally) and is not undone by the cause repeating", () => {
    const tripped = observeGate(undefined, subject, seen("accuracy_floor", true, 0), options)!;
    const acked = ackGate(tripped, op(5));
    expect(acked).toMatchObject({ state: "acked", by: "alice", note: "looking into it" });
    expect(servesNormally(acked, 10)).toBe(false);
    expect(observeGate(acked, subject, seen("accuracy_floor", true, 20), options)).toBe(acked);
  });

  it("override serves normally until its end, then is an acked trip again by itself", () => {
    const tripped = observeGate(undefined, subject, seen("accuracy_floor", true, 0), options)!;
    const over = overrideGate(tripped, { ...op(1000), forMs: 60_000 }, options);
    expect(over).toMatchObject({ state: "overridden", overrideUntil: 61_000 });
    expect(servesNormally(over, 60_999)).toBe(true);
    expect(servesNormally(over, 61_000)).toBe(false);
    expect(effectiveGate(over, 61_000)).toMatchObject({ state: "acked", causes: ["accuracy_floor"] });
    expect(effectiveGate(over, 61_000).overrideUntil).toBeUndefined();
    expect(over.log.at(-1)).toEqual({
      action: "override",
      by: "alice",
      at: 1000,
      note: "looking into it",
      until: 61_000,
    });
  });

  it("refuses actions without who or why, on an untripped gate, or an unbounded override", () => {
    const tripped = observeGate(undefined, subject, seen("accuracy_floor", true, 0), options)!;
    expect(() => ackGate(tripped, { by: "", at: 1, note: "x" })).toThrow(/by: is required/);
    expect(() => ackGate(tripped, { by: "bob", at: 1, note: " " })).toThrow(/reason: is required/);
    expect(() => ackGate(undefined, op(1))).toThrow(/not tripped/);
    expect(() => overrideGate(tripped, { ...op(1), forMs: 3_600_001 }, options)).toThrow(
      /for: must be at most 3600 s/,
    );
    expect(() => overrideGate(tripped, { ...op(1), forMs: 0 }, options)).toThrow(GateError);
    expect(() => releaseGate(releaseGate(tripped, op(2)), op(3))).toThrow(/not tripped/);
  });

  it("release is ok at once; the cause still active trips it again when next observed", () => {
    const tripped = observeGate(undefined, subject, seen("drift_critical", true, 0), options)!;
    const released = releaseGate(tripped, op(10));
    expect(released).toMatchObject({ state: "ok", causes: [], by: "alice" });
    expect(observeGate(released, subject, seen("drift_critical", true, 20), options)!.state).toBe("tripped");
  });

  it("subjects are view:<name> or model:<name>; records round-trip and bad ones name the field", () => {
    expect(parseGateSubject("model:fraud-v1")).toEqual({ kind: "model", name: "fraud-v1" });
    expect(() => parseGateSubject("fraud")).toThrow(/subject/);
    const tripped = observeGate(undefined, subject, seen("drift_critical", true, 0), options)!;
    expect(parseGateState(encodeGateState(tripped))).toEqual(tripped);
    expect(() => parseGateState("{")).toThrow(/not JSON/);
    expect(() => parseGateState(JSON.stringify({ ...tripped, state: "open" }))).toThrow(/^state:/);
    expect(() => parseGateState(JSON.stringify({ ...tripped, causes: ["x"] }))).toThrow(/^causes:/);
    expect(() => parseGateState(JSON.stringify({ ...tripped, state: "overridden" }))).toThrow(
      /^overrideUntil:/,
    );
  });

  // Any sequence of observations and operator actions, at increasing times.
  const step = fc.oneof(
    fc.record({
      kind: fc.constant("observe" as const),
      cause: fc.constantFrom("freshness_sla" as const, "drift_critical" as const, "accuracy_floor" as const),
      active: fc.boolean(),
      dt: fc.integer({ min: 0, max: 90_000 }),
    }),
    fc.record({
      kind: fc.constantFrom("ack" as const, "override" as const, "release" as const),
      forMs: fc.integer({ min: 1, max: 7_200_000 }),
      dt: fc.integer({ min: 0, max: 90_000 }),
    }),
  );

  it("properties: ok ⇔ no cause; overrides bounded; a clear needs clearAfterMs of quiet; log bounded", () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        let state: GateState | undefined;
        let now = 0;
        let quietSince: number | undefined; // every cause clear since (as the steps saw it)
        const active = new Set<string>();
        for (const s of steps) {
          now += s.dt;
          const before = state;
          const quietBefore = quietSince;
          try {
            if (s.kind === "observe") {
              state = observeGate(state, subject, seen(s.cause, s.active, now), options);
              if (s.active) active.add(s.cause);
              else active.delete(s.cause);
            } else if (s.kind === "ack") state = ackGate(state, op(now));
            else if (s.kind === "override")
              state = overrideGate(state, { ...op(now), forMs: s.forMs }, options);
            else state = releaseGate(state, op(now));
          } catch (error) {
            expect(error).toBeInstanceOf(GateError);
            expect(state).toBe(before);
            continue;
          }
          if (s.kind === "release") active.clear();
          if (active.size === 0) quietSince ??= now;
          else quietSince = undefined;
          if (!state) continue;
          expect(state.state === "ok").toBe(state.causes.length === 0 && state.clearingSince === undefined);
          if (state.state === "overridden")
            expect(state.overrideUntil! - state.at).toBeLessThanOrEqual(options.maxOverrideMs);
          if (before && before.state !== "ok" && state.state === "ok" && s.kind === "observe") {
            expect(before.clearingSince).toBeDefined();
            expect(now - before.clearingSince!).toBeGreaterThanOrEqual(options.clearAfterMs);
            expect(now - quietBefore!).toBeGreaterThanOrEqual(options.clearAfterMs);
          }
          if (state.state !== "ok") expect(new Set(state.causes)).toEqual(active);
          if (state.state !== "ok" && s.kind === "observe" && s.active)
            expect(state.causes).toContain(s.cause);
          expect(state.log.length).toBeLessThanOrEqual(GATE_LOG_LENGTH);
          expect(parseGateState(encodeGateState(state))).toEqual(state);
          if (state.state === "overridden") {
            expect(servesNormally(state, state.overrideUntil!)).toBe(false);
            expect(servesNormally(state, state.overrideUntil! - 1)).toBe(true);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe("gate policy in the definitions", () => {
  const defs = (view: object, model: object = {}) => ({
    sources: [{ name: "tx", topic: "t", entity: "card", timestamp: "ts" }],
    views: [{ name: "v", source: "tx", features: [{ name: "n", op: "count", window: "1h" }], ...view }],
    models: [{ name: "m-1", views: ["v"], ...model }],
  });

  it("views and models take gate.onTrip (quarantine by default); not part of the view version", () => {
    const plain = validateDefinitions(defs({}));
    const gated = validateDefinitions(defs({ gate: { onTrip: "refuse" } }, { gate: {} }));
    expect(gated.views[0]!.gate).toEqual({ onTrip: "refuse" });
    expect(gated.models[0]!.gate).toEqual({ onTrip: "quarantine" });
    expect(plain.views[0]!.gate).toBeUndefined();
    expect(gated.views[0]!.version).toBe(plain.views[0]!.version);
  });

  it("a wrong policy names the field", () => {
    expect(() => validateDefinitions(defs({ gate: { onTrip: "halt" } }))).toThrow(/views\[0\]\.gate\.onTrip/);
    expect(() => validateDefinitions(defs({}, { gate: { when: 1 } }))).toThrow(/models\[0\]\.gate/);
  });
});

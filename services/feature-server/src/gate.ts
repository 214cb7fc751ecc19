/**
 * The quality gates as this server serves them: the followed gate topic (no shared memory; see
 * @tessera/kafka's GateFollower) joined with the definitions' policies. A view is covered by its
 * own gate (`view:<name>`) and by the gate of every model that reads it (`model:<name>`).
 */

import type { Definitions } from "@tessera/transforms";
import {
  effectiveGate,
  type GateCause,
  type GateState,
  type GateStatus,
  type OnTrip,
} from "@tessera/transforms";

/** What the server needs of a follower (GateFollower, or a fixed map in tests). */
export interface GateSource {
  get(subject: string): GateState | undefined;
  readonly isCaughtUp: boolean;
}

/** A gate that is not ok, as a response reports it. */
export interface GateVerdict {
  subject: string;
  state: Exclude<GateStatus, "ok">;
  causes: GateCause[];
  since: number;
  overrideUntil?: number;
  incident?: string;
  onTrip: OnTrip;
}

export class GateBoard {
  /** view → the subjects that cover it, with their policy. */
  private readonly cover = new Map<string, Array<{ subject: string; onTrip: OnTrip }>>();

  constructor(
    definitions: Definitions,
    private readonly source: GateSource,
  ) {
    for (const view of definitions.views) {
      this.cover.set(view.name, [
        { subject: `view:${view.name}`, onTrip: view.gate?.onTrip ?? "quarantine" },
      ]);
    }
    for (const model of definitions.models) {
      for (const view of model.views) {
        this.cover
          .get(view)
          ?.push({ subject: `model:${model.name}`, onTrip: model.gate?.onTrip ?? "quarantine" });
      }
    }
  }

  get caughtUp(): boolean {
    return this.source.isCaughtUp;
  }

  /** The gates covering `view` that are not ok at `now` (overridden ones included: reported, not acted on). */
  verdicts(view: string, now: number): GateVerdict[] {
    const out: GateVerdict[] = [];
    for (const { subject, onTrip } of this.cover.get(view) ?? []) {
      const stored = this.source.get(subject);
      if (!stored) continue;
      const state = effectiveGate(stored, now);
      if (state.state === "ok") continue;
      const verdict: GateVerdict = {
        subject,
        state: state.state,
        causes: state.causes,
        since: state.since,
        onTrip,
      };
      if (state.overrideUntil !== undefined) verdict.overrideUntil = state.overrideUntil;
      if (state.incident) verdict.incident = state.incident;
      out.push(verdict);
    }
    return out;
  }
}

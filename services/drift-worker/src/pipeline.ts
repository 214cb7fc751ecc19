/**
 * The pipeline as the dashboard shows it: each view and model of the definitions with its owner,
 * on-call route, lineage and gate, and each SLO with the error budget left and burn rate this worker
 * measures itself — freshness from the views' update ages and accuracy from the models' windows, one
 * sample per evaluation, over the SLO's window since the worker started. Serving latency and
 * availability are measured where requests are, by Prometheus (`tessera slo rules`): listed, not
 * estimated. Pure: fed each evaluation's readings.
 */
import type { Definitions, GateState, Ownership, Slo } from "@tessera/transforms";
import { lineageOf } from "@tessera/transforms";

const HOUR = 3_600_000;
/** Samples kept per SLO at most (an evaluation every 2 s fills a day with 43,200). */
const MAX_SAMPLES = 50_000;

export interface PipelineItem {
  kind: "view" | "model";
  name: string;
  owner: string | null;
  onCall: string | null;
  /** model → views@version → topic (schema subject) → archive, as one line. */
  lineage: string;
  /** The gate, when not ok (the gate topic holds only gates that are not). */
  gate: Pick<GateState, "state" | "causes" | "since" | "by" | "note" | "overrideUntil"> | null;
}

export interface SloStatus {
  name: string;
  kind: Slo["kind"];
  objective: number;
  windowMs: number;
  owner: string | null;
  /** What it is about: `view card_activity`, `model fraud-v1`. */
  about: string;
  measuredBy: "drift-worker" | "prometheus";
  /** 1 − (bad share over the window) / (1 − objective); null until sampled or when Prometheus measures it. */
  budgetLeft: number | null;
  /** Bad share over the last hour / (1 − objective): 1 spends the budget exactly over the window. */
  burnRate1h: number | null;
  samples: number;
}

export interface PipelineStatus {
  items: PipelineItem[];
  slos: SloStatus[];
}

/** What one evaluation saw: the monitor's accessors. */
export interface PipelineReadings {
  now: number;
  viewAges: Map<string, number>;
  accuracy: Map<string, { accuracy: number; floor: number }>;
}

interface Sample {
  at: number;
  bad: boolean;
}

export class PipelineTracker {
  private readonly samples = new Map<string, Sample[]>();

  constructor(private readonly definitions: Definitions) {}

  /** One sample per SLO this worker can measure; kept for the SLO's window. */
  observe({ now, viewAges, accuracy }: PipelineReadings): void {
    for (const slo of this.definitions.slos) {
      const bad = this.judge(slo, viewAges, accuracy);
      if (bad === undefined) continue;
      const list = this.samples.get(slo.name) ?? [];
      list.push({ at: now, bad });
      let drop = 0;
      while (drop < list.length && (now - list[drop]!.at > slo.windowMs || list.length - drop > MAX_SAMPLES))
        drop++;
      this.samples.set(slo.name, drop > 0 ? list.slice(drop) : list);
    }
  }

  status(gates: GateState[], now: number): PipelineStatus {
    const gateOf = (subject: string) => {
      const gate = gates.find((g) => g.subject === subject && g.state !== "ok");
      if (!gate) return null;
      const { state, causes, since, by, note, overrideUntil } = gate;
      return {
        state,
        causes,
        since,
        by,
        ...(note ? { note } : {}),
        ...(overrideUntil ? { overrideUntil } : {}),
      };
    };
    const item = (kind: "view" | "model", name: string, owned: Ownership): PipelineItem => ({
      kind,
      name,
      owner: owned.owner ?? null,
      onCall: owned.onCall?.receiver ?? null,
      lineage: lineageLine(this.definitions, name),
      gate: gateOf(`${kind}:${name}`),
    });
    return {
      items: [
        ...this.definitions.models.map((m) => item("model", m.name, m)),
        ...this.definitions.views.map((v) => item("view", v.name, v)),
      ],
      slos: this.definitions.slos.map((slo) => this.sloStatus(slo, now)),
    };
  }

  private judge(
    slo: Slo,
    viewAges: PipelineReadings["viewAges"],
    accuracy: PipelineReadings["accuracy"],
  ): boolean | undefined {
    if (slo.kind === "freshness" && slo.view && slo.thresholdMs !== undefined) {
      const age = viewAges.get(slo.view);
      return age === undefined ? undefined : age > slo.thresholdMs;
    }
    if (slo.kind === "accuracy" && slo.model) {
      const latest = accuracy.get(slo.model);
      if (!latest) return undefined;
      const floor = this.definitions.models.find((m) => m.name === slo.model)?.accuracyFloor ?? latest.floor;
      return latest.accuracy < floor;
    }
    return undefined;
  }

  private sloStatus(slo: Slo, now: number): SloStatus {
    const measured = slo.kind === "freshness" || slo.kind === "accuracy";
    const samples = this.samples.get(slo.name) ?? [];
    const budget = 1 - slo.objective;
    const badShare = (list: Sample[]) => list.filter((s) => s.bad).length / list.length;
    const lastHour = samples.filter((s) => now - s.at <= HOUR);
    return {
      name: slo.name,
      kind: slo.kind,
      objective: slo.objective,
      windowMs: slo.windowMs,
      owner: slo.owner ?? null,
      about: slo.model ? `model ${slo.model}` : slo.view ? `view ${slo.view}` : "",
      measuredBy: measured ? "drift-worker" : "prometheus",
      budgetLeft: samples.length > 0 ? 1 - badShare(samples) / budget : null,
      burnRate1h: lastHour.length > 0 ? badShare(lastHour) / budget : null,
      samples: samples.length,
    };
  }
}

/** `fraud-v1 ← card_activity@3f2a… ← payments.transactions (payments.transactions-value) → archive/…` */
function lineageLine(definitions: Definitions, name: string): string {
  const lineage = lineageOf(definitions, name);
  if (!lineage) return "";
  const views = lineage.views.map((v) => {
    const { source } = v;
    const subject = source.schema.subject ? ` (${source.schema.subject})` : "";
    const archive = source.archive ? ` → ${source.archive}` : "";
    return `${v.name}@${v.version} ← ${source.topic}${subject}${archive}`;
  });
  return lineage.kind === "model" ? `${name} ← ${views.join("; ")}` : views.join("; ");
}

import type { Definitions, Model, Ownership, View } from "./types.js";

/** A source as lineage shows it: topic, schema subject (version filled in by whoever asks the registry). */
export interface SourceLineage extends Ownership {
  name: string;
  topic: string;
  schema: { subject: string | null; version: number | null; compatibility: string | null };
  archive: string | null;
}

export interface ViewLineage extends Ownership {
  name: string;
  version: string;
  freshness: View["freshness"] | null;
  source: SourceLineage;
}

/** What serves a model (or a view), computed from what: model → views@version → topic → schema → archive. */
export interface Lineage {
  kind: "model" | "view";
  name: string;
  model: (Omit<Model, "views" | "reference"> & { reference: string | null }) | null;
  views: ViewLineage[];
}

/** Lineage of a model (looked up first) or a view by name; undefined when neither exists. */
export function lineageOf(definitions: Definitions, name: string): Lineage | undefined {
  const model = definitions.models.find((m) => m.name === name);
  const names = model ? model.views : definitions.views.some((v) => v.name === name) ? [name] : [];
  if (names.length === 0) return undefined;
  const views = names.map((n) => definitions.views.find((v) => v.name === n)!).map(viewLineage);
  if (!model) return { kind: "view", name, model: null, views };
  const { views: _, ...contract } = model;
  return { kind: "model", name, model: { ...contract, reference: model.reference ?? null }, views };
}

function viewLineage(view: View): ViewLineage {
  const { source } = view;
  const out: ViewLineage = {
    name: view.name,
    version: view.version,
    freshness: view.freshness ?? null,
    source: {
      name: source.name,
      topic: source.topic,
      schema: { subject: source.schema ?? null, version: null, compatibility: source.compatibility ?? null },
      archive: source.archive ?? null,
    },
  };
  if (view.owner) out.owner = view.owner;
  if (view.onCall) out.onCall = view.onCall;
  if (source.owner) out.source.owner = source.owner;
  if (source.onCall) out.source.onCall = source.onCall;
  return out;
}

/** Fills each source's schema version from `latest` (the registry's latest version of a subject). */
export async function withSchemaVersions(
  lineage: Lineage,
  latest: (subject: string) => Promise<number | null>,
): Promise<Lineage> {
  const views = await Promise.all(
    lineage.views.map(async (view) => {
      const { subject } = view.source.schema;
      const version = subject ? await latest(subject) : null;
      return { ...view, source: { ...view.source, schema: { ...view.source.schema, version } } };
    }),
  );
  return { ...lineage, views };
}

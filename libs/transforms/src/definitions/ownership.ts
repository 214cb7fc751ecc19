import type { Definitions } from "./types.js";

export interface OwnedItem {
  kind: "source" | "view" | "model" | "slo";
  name: string;
}

/** Sources, views and models that declare no owner: `tessera validate` lists them. */
export function unowned(definitions: Definitions): OwnedItem[] {
  return [
    ...definitions.sources.filter((s) => !s.owner).map((s) => ({ kind: "source" as const, name: s.name })),
    ...definitions.views.filter((v) => !v.owner).map((v) => ({ kind: "view" as const, name: v.name })),
    ...definitions.models.filter((m) => !m.owner).map((m) => ({ kind: "model" as const, name: m.name })),
    ...definitions.slos.filter((s) => !s.owner).map((s) => ({ kind: "slo" as const, name: s.name })),
  ];
}

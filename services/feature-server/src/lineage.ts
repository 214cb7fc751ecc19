/**
 * GET /v1/lineage: what serves a model (or view), computed from what, since when — the definitions'
 * lineage (libs/transforms) plus what only this server knows: since when it serves each view
 * version, and the schema subject's registered version (asked of the registry, cached a minute).
 */
import { SchemaNotFoundError, SchemaRegistry } from "@tessera/kafka";
import { type Definitions, type Lineage, lineageOf, withSchemaVersions } from "@tessera/transforms";
import { invalid, ServeError } from "./errors.js";
import type { Principal } from "./serve.js";

const CACHE_MS = 60_000;

export type ServedLineage = Lineage & {
  views: Array<Lineage["views"][number] & { servingSince: number }>;
};

export class LineageService {
  private readonly versions = new Map<string, { version: number | null; at: number }>();
  private readonly registry: SchemaRegistry | undefined;

  constructor(
    private readonly definitions: Definitions,
    /** When this server started serving its view versions (epoch ms). */
    private readonly servingSince: number,
    registryUrl: string | undefined,
    private readonly now: () => number = Date.now,
  ) {
    this.registry = registryUrl ? new SchemaRegistry(registryUrl) : undefined;
  }

  async get(query: { model?: string; view?: string }, principal: Principal): Promise<ServedLineage> {
    const field = query.model !== undefined ? "model" : "view";
    const name = query.model ?? query.view;
    if (name === undefined || (query.model !== undefined && query.view !== undefined)) {
      throw invalid("querystring", "give exactly one of model or view");
    }
    const exists =
      field === "model"
        ? this.definitions.models.some((m) => m.name === name)
        : this.definitions.views.some((v) => v.name === name);
    const found = exists ? lineageOf(this.definitions, name) : undefined;
    if (!found) throw invalid(field, `no ${field} named ${JSON.stringify(name)} is served here`);
    if (principal.views !== "*") {
      for (const view of found.views) {
        if (!principal.views.has(view.name))
          throw new ServeError("forbidden", `key ${principal.id} may not read view ${view.name}`, field);
      }
    }
    const lineage = this.registry ? await withSchemaVersions(found, (s) => this.version(s)) : found;
    return { ...lineage, views: lineage.views.map((v) => ({ ...v, servingSince: this.servingSince })) };
  }

  /** The subject's latest version; null when not registered or the registry does not answer (logged by the caller's status). */
  private async version(subject: string): Promise<number | null> {
    const cached = this.versions.get(subject);
    if (cached && this.now() - cached.at < CACHE_MS) return cached.version;
    let version: number | null = null;
    try {
      version = (await this.registry!.latest(subject)).version ?? null;
    } catch (error) {
      // An unreachable registry is not cached: the next call asks again.
      if (!(error instanceof SchemaNotFoundError)) return cached?.version ?? null;
    }
    this.versions.set(subject, { version, at: this.now() });
    return version;
  }
}

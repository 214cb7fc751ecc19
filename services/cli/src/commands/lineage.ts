import { SchemaNotFoundError, SchemaRegistry } from "@tessera/kafka";
import { loadDefinitions } from "@tessera/runtime";
import { formatDuration, type Lineage, lineageOf, withSchemaVersions } from "@tessera/transforms";
import type { Command } from "commander";
import { CliError, exitCodes } from "../errors.js";

/** The registry's latest version of a subject; null when the subject is not registered. */
export function registryVersions(url: string): (subject: string) => Promise<number | null> {
  const registry = new SchemaRegistry(url);
  return async (subject) => {
    try {
      return (await registry.latest(subject)).version ?? null;
    } catch (error) {
      if (error instanceof SchemaNotFoundError) return null;
      throw new CliError(`schema registry ${url}: ${(error as Error).message}`, exitCodes.unavailable);
    }
  };
}

export function register(program: Command): void {
  program
    .command("lineage")
    .description(
      "What serves a model (or view), computed from what: views@version → topic → schema subject@version → archive, reference profile",
    )
    .argument("<name>", "a model or view of the definitions (a model is looked up first)")
    .requiredOption("--definitions <file>", "definitions file (.yaml, .yml, .ts, .mts, .js, .mjs)")
    .option(
      "--registry <url>",
      "schema registry for subject versions (default: $SCHEMA_REGISTRY_URL; none: unknown)",
    )
    .option("--json", "print the lineage as JSON")
    .addHelpText(
      "after",
      "\nExamples:\n  tessera lineage fraud-v1 --definitions examples/payments/features.yaml\n" +
        "  tessera lineage card_activity --definitions defs.yaml --registry http://localhost:8081 --json\n",
    )
    .action(async (name: string, options: { definitions: string; registry?: string; json?: boolean }) => {
      const definitions = await loadDefinitions(options.definitions);
      const found = lineageOf(definitions, name);
      if (!found) {
        const known = [...definitions.models.map((m) => m.name), ...definitions.views.map((v) => v.name)];
        throw new CliError(`no model or view named ${name} (defined: ${known.join(", ")})`, exitCodes.usage);
      }
      const url = options.registry ?? process.env["SCHEMA_REGISTRY_URL"];
      const lineage = url ? await withSchemaVersions(found, registryVersions(url)) : found;
      if (options.json) console.log(JSON.stringify(lineage, null, 2));
      else console.log(formatLineage(lineage, url !== undefined));
    });
}

export function formatLineage(lineage: Lineage, asked: boolean): string {
  const lines: string[] = [];
  const owner = (o: { owner?: string }) => (o.owner ? ` [owner ${o.owner}]` : " [no owner]");
  if (lineage.model) {
    const m = lineage.model;
    const floors = [
      m.accuracyFloor === undefined ? "" : `accuracy ≥ ${m.accuracyFloor}`,
      m.aucFloor === undefined ? "" : `AUC ≥ ${m.aucFloor}`,
    ].filter(Boolean);
    lines.push(`model ${m.name}${owner(m)}${floors.length ? `, ${floors.join(", ")}` : ""}`);
    lines.push(`  reference profile: ${m.reference ?? "(none declared)"}`);
  }
  for (const view of lineage.views) {
    const sla = view.freshness ? `, freshness SLA ${formatDuration(view.freshness.maxAgeMs)}` : "";
    lines.push(`view ${view.name}@${view.version}${owner(view)}${sla}`);
    const { source } = view;
    const { subject, version, compatibility } = source.schema;
    const at = version !== null ? `@${version}` : asked ? "@(not registered)" : "@(registry not asked)";
    lines.push(`  ← topic ${source.topic} (source ${source.name})${owner(source)}`);
    lines.push(
      `  ← schema ${subject ? `${subject}${at}` : "(none declared)"}${compatibility ? `, ${compatibility}` : ""}`,
    );
    lines.push(`  ← archive ${source.archive ?? "(none declared)"}`);
  }
  return lines.join("\n");
}

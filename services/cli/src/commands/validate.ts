import { definitionsFileTypes, loadDefinitions } from "@tessera/runtime";
import { formatDuration, type Ownership, unowned } from "@tessera/transforms";
import type { Command } from "commander";
import { exitCodes } from "../errors.js";

export function register(program: Command): void {
  program
    .command("validate")
    .description("Check feature definitions (YAML or TypeScript); print each view's version and features")
    .argument("<defs>", `definitions file (${definitionsFileTypes.join(", ")})`)
    .option("--json", "print the normalised definitions as JSON")
    .option("--require-owners", "exit 1 when a source, view or model has no owner")
    .action(async (path: string, options: { json?: boolean; requireOwners?: boolean }) => {
      const definitions = await loadDefinitions(path);
      const missing = unowned(definitions);
      const fail = () => {
        if (options.requireOwners && missing.length > 0) process.exitCode = exitCodes.failed;
      };
      if (options.json) {
        const views = definitions.views.map((view) => ({
          name: view.name,
          version: view.version,
          source: view.source,
          retentionMs: view.retentionMs,
          derive: view.derive.map((d) => ({ name: d.name, expr: d.text })),
          filter: view.filter?.text ?? null,
          features: view.features,
          owner: view.owner ?? null,
          onCall: view.onCall ?? null,
          freshness: view.freshness ?? null,
        }));
        const { sources, models } = definitions;
        console.log(JSON.stringify({ valid: true, sources, views, models, unowned: missing }, null, 2));
        return fail();
      }
      for (const source of definitions.sources) {
        const contract = [
          source.schema ? `schema ${source.schema}` : "",
          source.compatibility ? `compatibility ${source.compatibility}` : "",
        ].filter(Boolean);
        console.log(
          `source ${source.name} ← ${source.topic}${contract.map((c) => `, ${c}`).join("")}${ownedBy(source)}`,
        );
      }
      for (const view of definitions.views) {
        console.log(
          `view ${view.name} (version ${view.version}) ← ${view.source.topic}, entity ${view.source.entity}${ownedBy(view)}`,
        );
        if (view.freshness) {
          const { maxAgeMs, onStale, from } = view.freshness;
          console.log(
            `  freshness SLA: ${formatDuration(maxAgeMs)} (from the ${from}), ${onStale} when stale`,
          );
        }
        for (const f of view.features) {
          const input = f.column ? `(${f.column})` : "()";
          console.log(
            `  ${f.name}: ${f.op}${input} over ${formatDuration(f.windowMs)}, hop ${formatDuration(f.hopMs)}`,
          );
        }
      }
      for (const model of definitions.models) {
        const floors = [
          model.accuracyFloor === undefined ? "" : `accuracy ≥ ${model.accuracyFloor}`,
          model.aucFloor === undefined ? "" : `AUC ≥ ${model.aucFloor}`,
        ].filter(Boolean);
        console.log(`model ${model.name} ← ${model.views.join(", ")}${ownedBy(model)}`);
        if (floors.length > 0) console.log(`  floors: ${floors.join(", ")}`);
      }
      for (const slo of definitions.slos) {
        const subject = slo.view ? `view ${slo.view}` : slo.model ? `model ${slo.model}` : "serving";
        const bound = slo.thresholdMs === undefined ? "" : ` within ${formatDuration(slo.thresholdMs)}`;
        console.log(
          `slo ${slo.name}: ${slo.kind}${bound} ${slo.objective * 100}% over ${formatDuration(slo.windowMs)} (${subject})${ownedBy(slo)}`,
        );
      }
      const features = definitions.views.reduce((n, v) => n + v.features.length, 0);
      console.log(
        `ok: ${definitions.sources.length} source(s), ${definitions.views.length} view(s), ${definitions.models.length} model(s), ${definitions.slos.length} SLO(s), ${features} feature(s)`,
      );
      if (missing.length > 0) {
        console.log(`no owner (${missing.length}): ${missing.map((m) => `${m.kind} ${m.name}`).join(", ")}`);
      }
      fail();
    });
}

/** ", owner payments-risk → receiver payments-pager" for the listing. */
function ownedBy(item: Ownership): string {
  if (!item.owner) return ", no owner";
  const route = item.onCall;
  const to = [
    route?.receiver ? `receiver ${route.receiver}` : "",
    ...Object.entries(route?.labels ?? {}).map(([k, v]) => `${k}=${v}`),
  ].filter(Boolean);
  return `, owner ${item.owner}${to.length > 0 ? ` → ${to.join(", ")}` : ""}`;
}

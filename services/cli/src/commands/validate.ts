import { definitionsFileTypes, loadDefinitions } from "@tessera/runtime";
import { formatDuration } from "@tessera/transforms";
import type { Command } from "commander";

export function register(program: Command): void {
  program
    .command("validate")
    .description("Check feature definitions (YAML or TypeScript); print each view's version and features")
    .argument("<defs>", `definitions file (${definitionsFileTypes.join(", ")})`)
    .option("--json", "print the normalised definitions as JSON")
    .action(async (path: string, options: { json?: boolean }) => {
      const definitions = await loadDefinitions(path);
      if (options.json) {
        const views = definitions.views.map((view) => ({
          name: view.name,
          version: view.version,
          source: view.source,
          retentionMs: view.retentionMs,
          derive: view.derive.map((d) => ({ name: d.name, expr: d.text })),
          filter: view.filter?.text ?? null,
          features: view.features,
        }));
        console.log(JSON.stringify({ valid: true, sources: definitions.sources, views }, null, 2));
        return;
      }
      for (const view of definitions.views) {
        console.log(
          `view ${view.name} (version ${view.version}) ← ${view.source.topic}, entity ${view.source.entity}`,
        );
        for (const f of view.features) {
          const input = f.column ? `(${f.column})` : "()";
          console.log(
            `  ${f.name}: ${f.op}${input} over ${formatDuration(f.windowMs)}, hop ${formatDuration(f.hopMs)}`,
          );
        }
      }
      const features = definitions.views.reduce((n, v) => n + v.features.length, 0);
      console.log(
        `ok: ${definitions.sources.length} source(s), ${definitions.views.length} view(s), ${features} feature(s)`,
      );
    });
}

import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { alertLine } from "@tessera/drift-worker";
import { loadDefinitions } from "@tessera/runtime";
import type { Command } from "commander";
import { runDemo } from "../demo/run.js";
import { CliError, exitCodes } from "../errors.js";
import { port, positiveNumber } from "../options.js";

const repoRoot = fileURLToPath(new URL("../../../../", import.meta.url));

interface DemoFlags {
  duration: number;
  seed: number;
  rate: number;
  driftAfter?: number;
  stack?: boolean;
  port: number;
  host: string;
  out: string;
  json?: boolean;
}

/** KEY=VALUE lines of .tessera/stack.env, for --stack (the environment wins). */
function loadStackEnv(): void {
  const file = resolve(repoRoot, ".tessera/stack.env");
  if (!existsSync(file)) return;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const match = line.match(/^([A-Z_]+)=(.*)$/);
    if (match && process.env[match[1]!] === undefined) process.env[match[1]!] = match[2]!;
  }
}

export function register(program: Command): void {
  program
    .command("demo")
    .description(
      "Run every Tessera service in one process on a synthetic payments stream: serve features, build a " +
        "reference from a point-in-time snapshot, inject drift and show the alert (no infrastructure needed)",
    )
    .option("--duration <seconds>", "how long to stream", positiveNumber, 90)
    .option("--seed <n>", "random seed of the payments stream", positiveNumber, 42)
    .option("--rate <n>", "payments per second", positiveNumber, 100)
    .option("--drift-after <seconds>", "when to inject drift (default: 60% of the duration)", positiveNumber)
    .option("--stack", "use the real Kafka, registry and Redis from .tessera/stack.env instead of memory")
    .option("--host <address>", "address the servers bind", "127.0.0.1")
    .option(
      "--port <n>",
      "HTTP port of the feature server (0: any free port; gRPC picks a free one)",
      port,
      8080,
    )
    .option("--out <dir>", "where the archive, snapshot and profile go", ".tessera/demo")
    .option("--json", "print the summary as JSON")
    .addHelpText(
      "after",
      "\nExamples:\n  tessera demo                      # 90 s, in memory\n  tessera demo --duration 30 --json\n  npm run stack:up && tessera demo --stack\n",
    )
    .action(async (flags: DemoFlags) => {
      if (flags.stack) loadStackEnv();
      const definitionsPath = resolve(repoRoot, "examples/demo/features.yaml");
      const definitions = await loadDefinitions(definitionsPath);
      const stop = new AbortController();
      const onSignal = () => {
        if (stop.signal.aborted) process.exit(130);
        console.error("\nstopping (Ctrl-C again to force)…");
        stop.abort();
      };
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      let result: Awaited<ReturnType<typeof runDemo>>;
      try {
        result = await runDemo(
          {
            durationSeconds: flags.duration,
            seed: flags.seed,
            rate: flags.rate,
            driftAfterSeconds: flags.driftAfter,
            stack: flags.stack ?? false,
            host: flags.host,
            port: flags.port,
            outDir: resolve(flags.out),
            definitionsPath,
            definitions,
            verbose: !flags.json,
          },
          stop.signal,
        );
      } catch (error) {
        const e = error as NodeJS.ErrnoException;
        if (e.code === "EADDRINUSE") {
          throw new CliError(`port ${flags.port} is taken: pick another with --port`, exitCodes.unavailable);
        }
        throw error;
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
      const firing = result.alerts.filter((a) => a.status === "FIRING");
      if (flags.json) {
        console.log(JSON.stringify({ ...result, firing: firing.length }, null, 2));
        return;
      }
      console.log(
        [
          "",
          `done: ${result.payments} payments (${result.backlog} replayed history), ${result.archiveFiles} archive files, ${firing.length} alert(s) fired`,
          `  served:   ${result.servedFeature ? `${result.servedFeature.entity} ${JSON.stringify(result.servedFeature.values)}` : "nothing yet"}`,
          `  snapshot: ${result.snapshot}`,
          `  profile:  ${result.profile}`,
          ...firing.map((a) => `  alert:    ${alertLine(a)}`),
        ].join("\n"),
      );
    });
}

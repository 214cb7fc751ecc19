import type { Command } from "commander";
import { exitCodes } from "./errors.js";

/** Worked examples per top-level command, shown under `tessera <command> --help`. */
const examples: Record<string, string[]> = {
  validate: ["tessera validate examples/payments/features.yaml", "tessera validate defs.ts --json"],
  snapshot: [
    "tessera snapshot --definitions examples/payments/features.yaml --events archive/payments.transactions \\",
    "  --spine labels.csv --out training.parquet",
    "tessera snapshot --definitions defs.yaml --events events.jsonl --spine spine.parquet --out out.csv \\",
    "  --features card_activity:txn_count_1h,amount_sum_1h --full-names --json",
  ],
  drift: [
    "tessera drift --reference last-month.parquet --current today.parquet",
    "tessera drift --reference ref.csv --current cur.csv --json --fail-on-drift --exclude card_id,timestamp",
  ],
  profile: [
    "tessera profile --from training.parquet --out reference.json --exclude card_id,timestamp",
    "tessera profile --from archive/payments.transactions --since 2026-11-01 --until 2026-11-08 \\",
    "  --time-column event_time --features amount,country --out reference.json",
  ],
  backfill: [
    "tessera backfill --definitions examples/payments/features.yaml --view card_activity \\",
    "  --archive archive --processor payments --from 2026-11-21T00:00:00Z",
  ],
  consistency: [
    "tessera consistency --definitions examples/payments/features.yaml --archive archive",
    "tessera consistency --definitions defs.yaml --archive archive --served served.jsonl --json --fail-on-mismatch",
  ],
};

const exitCodeHelp = `
Exit codes:
  ${exitCodes.ok}   ok
  ${exitCodes.failed}   the command ran and found a problem (invalid definitions, drift or mismatches with --fail-on-…)
  ${exitCodes.usage}   wrong flags or arguments
  ${exitCodes.input}   input files missing or malformed (the message names file, row and column)
  ${exitCodes.unavailable}   a service (Kafka, schema registry, store) could not be reached
  ${exitCodes.internal}  internal error (please report it)

Connection settings come from KAFKA_BROKERS, SCHEMA_REGISTRY_URL, REDIS_URL, CASSANDRA_CONTACT_POINTS
(\`npm run stack:up\` writes them to .tessera/stack.env). Run \`tessera <command> --help\` for its flags.`;

/** Adds examples to each command and the exit codes to the top-level help. */
export function documentCommands(program: Command): void {
  for (const command of program.commands) {
    const lines = examples[command.name()];
    if (lines) command.addHelpText("after", `\nExamples:\n${lines.map((l) => `  ${l}`).join("\n")}\n`);
  }
  program.addHelpText("after", exitCodeHelp);
}

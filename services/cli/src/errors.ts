import type { DefinitionsProblem } from "@tessera/runtime";

/** Exit codes, documented in the README: scripts can tell bad input from a broken environment. */
export const exitCodes = {
  ok: 0,
  /** The command ran and found a problem (invalid definitions, drift detected with --fail-on-drift). */
  failed: 1,
  /** Wrong flags or arguments. */
  usage: 2,
  /** Input files are missing or malformed. */
  input: 3,
  /** A service (Kafka, registry, store) could not be reached. */
  unavailable: 4,
  internal: 70,
} as const;

/** How each definitions problem exits (docs/definitions.md: invalid 1, usage 2, unreadable 3). */
export const definitionsExitCodes: Record<DefinitionsProblem, number> = {
  invalid: exitCodes.failed,
  usage: exitCodes.usage,
  unreadable: exitCodes.input,
};

/** An error the user can act on: printed as one line, no stack trace. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = exitCodes.failed,
  ) {
    super(message);
    this.name = "CliError";
  }
}

import { DefinitionsLoadError } from "@tessera/runtime";
import { Command, CommanderError } from "commander";
import { commands } from "./commands/index.js";
import { CliError, definitionsExitCodes, exitCodes } from "./errors.js";
import { documentCommands } from "./help.js";

const program = new Command()
  .name("tessera")
  .description("Tessera: streaming features and drift detection, one definition online and offline.")
  .showHelpAfterError("(run with --help for usage)")
  .exitOverride();

for (const register of commands) register(program);
documentCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) process.exit(error.exitCode === 0 ? 0 : exitCodes.usage);
  if (error instanceof CliError) {
    console.error(`tessera: ${error.message}`);
    process.exit(error.exitCode);
  }
  if (error instanceof DefinitionsLoadError) {
    console.error(`tessera: ${error.message}`);
    process.exit(definitionsExitCodes[error.problem]);
  }
  console.error(error);
  process.exit(exitCodes.internal);
}

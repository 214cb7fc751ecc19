import { writeFile } from "node:fs/promises";
import { loadDefinitions } from "@tessera/runtime";
import type { Command } from "commander";
import { clientTypes } from "../codegen/client-types.js";
import { CliError, exitCodes } from "../errors.js";
import { defaultSchemasDir, topicSchemas } from "./schemas.js";

interface ClientOptions {
  definitions: string;
  schemas: string;
  out?: string;
  name?: string;
}

export function register(program: Command): void {
  const codegen = program.command("codegen").description("Generate code from the feature definitions");
  codegen
    .command("client")
    .description(
      'A TypeScript declaration of every feature ("view:feature" → value type) and each view\'s entity key, for @tessera/client',
    )
    .requiredOption("--definitions <file>", "feature definitions (.yaml, .yml, .ts, .js)")
    .option(
      "--schemas <dir>",
      "directory with topics.json and the Avro schemas: column types of the sources",
      defaultSchemasDir,
    )
    .option("--out <file>", "write here (default: standard output)")
    .option("--name <identifier>", "name of the exported interface", "TesseraFeatures")
    .addHelpText(
      "after",
      "\nExamples:\n  tessera codegen client --definitions examples/payments/features.yaml --out src/features.d.ts\n" +
        "  tessera codegen client --definitions defs.ts --schemas schemas --name PaymentsFeatures\n",
    )
    .action(async (options: ClientOptions) => {
      const definitions = await loadDefinitions(options.definitions);
      let schemas: Map<string, object>;
      try {
        schemas = topicSchemas(options.schemas);
      } catch (error) {
        if (error instanceof CliError) throw error;
        throw new CliError(`--schemas ${options.schemas}: ${(error as Error).message}`, exitCodes.input);
      }
      let text: string;
      try {
        text = clientTypes(definitions, schemas, { name: options.name, source: options.definitions });
      } catch (error) {
        throw new CliError((error as Error).message, exitCodes.usage);
      }
      if (!options.out) {
        process.stdout.write(text);
        return;
      }
      await writeFile(options.out, text).catch((error: NodeJS.ErrnoException) => {
        throw new CliError(`${options.out}: cannot write: ${error.code ?? error.message}`, exitCodes.input);
      });
      const features = definitions.views.reduce(
        (n, v) => n + v.features.length + (v.onDemand?.length ?? 0),
        0,
      );
      console.error(`wrote ${options.out}: ${features} feature(s) of ${definitions.views.length} view(s)`);
    });
}

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { SchemaRegistry, SchemaRegistryError, valueSubject } from "@tessera/kafka";
import type { Command } from "commander";
import { CliError, exitCodes } from "../errors.js";

export const defaultSchemasDir = fileURLToPath(new URL("../../../../schemas/", import.meta.url));

/** schemas/topics.json: topic → Avro file, relative to the schemas directory. */
export function topicSchemas(schemasDir = defaultSchemasDir): Map<string, object> {
  const index = JSON.parse(readFileSync(`${schemasDir}/topics.json`, "utf8")) as Record<string, string>;
  const out = new Map<string, object>();
  for (const [topic, file] of Object.entries(index)) {
    if (topic.startsWith("$")) continue;
    try {
      out.set(topic, JSON.parse(readFileSync(`${schemasDir}/${file}`, "utf8")));
    } catch (error) {
      throw new CliError(
        `schemas/topics.json: ${topic} → ${file}: ${(error as Error).message}`,
        exitCodes.input,
      );
    }
  }
  return out;
}

interface PushOptions {
  registry?: string;
  schemas: string;
  compatibility: string;
  json?: boolean;
}

export function register(program: Command): void {
  const schemas = program
    .command("schemas")
    .description("Manage the schemas Tessera's topics are written with");
  schemas
    .command("push")
    .description("Register every schema in schemas/topics.json under <topic>-value (idempotent)")
    .option("--registry <url>", "Confluent-API schema registry (default: $SCHEMA_REGISTRY_URL)")
    .option("--schemas <dir>", "schemas directory holding topics.json", defaultSchemasDir)
    .option("--compatibility <level>", "subject compatibility to set", "BACKWARD")
    .option("--json", "print the result as JSON")
    .addHelpText(
      "after",
      "\nExample:\n  tessera schemas push --registry http://127.0.0.1:8081/apis/ccompat/v7\n",
    )
    .action(async (options: PushOptions) => {
      const url = options.registry ?? process.env["SCHEMA_REGISTRY_URL"];
      if (!url) {
        throw new CliError("no registry: pass --registry <url> or set SCHEMA_REGISTRY_URL", exitCodes.usage);
      }
      const registry = new SchemaRegistry(url);
      const results: Array<{ topic: string; subject: string; id: number }> = [];
      try {
        for (const [topic, schema] of topicSchemas(options.schemas)) {
          const subject = valueSubject(topic);
          await registry.client
            .updateConfig(subject, { compatibility: options.compatibility as never })
            .catch(() => {
              // Some registries refuse per-subject config before the subject exists; registration still works.
            });
          results.push({ topic, subject, id: await registry.register(subject, schema) });
        }
      } catch (error) {
        if (error instanceof SchemaRegistryError) {
          throw new CliError(error.message, error.retriable ? exitCodes.unavailable : exitCodes.failed);
        }
        throw error;
      } finally {
        registry.close();
      }
      if (options.json) console.log(JSON.stringify({ registry: url, subjects: results }, null, 2));
      else for (const r of results) console.log(`${r.subject.padEnd(36)} id ${r.id}`);
    });
}

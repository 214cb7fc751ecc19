/**
 * Writes libs/kafka/src/wire.ts, the TypeScript types of every Avro schema in schemas/avro: the
 * schemas are the source of truth for what goes over Kafka. `--check` exits 1 when the file is stale
 * (libs/kafka/test/wire-types.test.ts checks the same).
 *
 *   npx tsx scripts/codegen/wire-types.ts [--check]
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { avroModule } from "../../libs/kafka/src/avro-types.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
export const wireFile = `${root}libs/kafka/src/wire.ts`;

export const HEADER =
  "// Generated from schemas/avro/*.avsc by scripts/codegen/wire-types.ts: do not edit, run\n" +
  "// `npm run codegen:wire` after changing a schema.";

/** The text wire.ts should have, from the schemas as they are now (files in name order). */
export function wireTypes(): string {
  const dir = `${root}schemas/avro/`;
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".avsc"))
    .sort();
  return avroModule(
    files.map((f) => JSON.parse(readFileSync(dir + f, "utf8")) as object),
    HEADER,
  );
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const text = wireTypes();
  if (process.argv.includes("--check")) {
    const stale = readFileSync(wireFile, "utf8") !== text;
    if (stale) console.error(`${wireFile} is stale: run npm run codegen:wire`);
    process.exit(stale ? 1 : 0);
  }
  writeFileSync(wireFile, text);
  console.log(`wrote ${wireFile}`);
}

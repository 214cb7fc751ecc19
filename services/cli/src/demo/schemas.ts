import { readFileSync } from "node:fs";

/** An Avro schema of schemas/avro by file name (the same path from src/ and dist/). */
export function readSchema(name: string): object {
  return JSON.parse(readFileSync(new URL(`../../../../schemas/avro/${name}.avsc`, import.meta.url), "utf8"));
}

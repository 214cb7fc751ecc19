/**
 * `tessera codegen client` types @tessera/client: the generated declaration, used as a client's
 * schema, must accept the real feature names and entity keys, type each value, and reject typos —
 * checked by compiling a usage file with the TypeScript compiler (`@ts-expect-error` lines must fail).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseDefinitionsYaml } from "@tessera/transforms";
import ts from "typescript";
import { afterAll, describe, expect, it } from "vitest";
import { clientTypes } from "../src/codegen/client-types.js";

const ROOT = resolve(import.meta.dirname, "../../..");
const dir = mkdtempSync(join(tmpdir(), "codegen-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const USAGE = `
import { createClient } from "@tessera/client";
import type { TesseraFeatures } from "./features.js";

const client = createClient<TesseraFeatures>({ url: "http://127.0.0.1:8080" });

export async function use() {
  const r = await client.getFeatures({
    features: ["card_activity:txn_count_1h", "card_activity:last_country"],
    entities: { card_id: ["c-1"] },
  });
  const row = r.entities.card_id[0]!;
  const count: number | null = row.features["card_activity:txn_count_1h"].value;
  const country: string | null = row.features["card_activity:last_country"].value;
  // @ts-expect-error a count is a number, not text
  const wrong: string | null = row.features["card_activity:txn_count_1h"].value;
  // @ts-expect-error not requested, so not in the result
  row.features["card_activity:amount_sum_1h"];

  const all = await client.getFeatures({ features: ["card_activity:*"], entities: { card_id: ["c-1"] } });
  const ratio = all.entity("card_id", "c-1")?.["card_activity:amount_ratio_to_mean"].value;
  const mean: number | null | undefined = all.entity("card_id", "c-1")?.["card_activity:amount_mean_1h"].value;

  // @ts-expect-error no such feature
  await client.getFeatures({ features: ["card_activity:txn_count_2h"], entities: { card_id: ["c-1"] } });
  // @ts-expect-error the view is keyed by card_id
  await client.getFeatures({ features: ["card_activity:txn_count_1h"], entities: { merchant_id: ["m-1"] } });
  return [count, country, wrong, ratio, mean];
}
`;

describe("tessera codegen client", () => {
  it("writes a declaration that types feature names, entity keys and values", () => {
    const out = join(dir, "features.d.ts");
    const stderr = execFileSync(
      process.execPath,
      [
        "--conditions=@tessera/source",
        "--import",
        "tsx",
        join(ROOT, "services/cli/src/main.ts"),
        "codegen",
        "client",
        "--definitions",
        join(ROOT, "examples/payments/features.yaml"),
        "--out",
        out,
      ],
      { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
    );
    expect(stderr).toBe("");
    const text = readFileSync(out, "utf8");
    expect(text).toContain('"card_activity:txn_count_1h": number;');
    // From the source topic's Avro schema: country is a string.
    expect(text).toContain('"card_activity:last_country": string;');
    expect(text).toContain('"card_activity": "card_id";');

    writeFileSync(join(dir, "usage.ts"), USAGE);
    const program = ts.createProgram([join(dir, "usage.ts")], {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      customConditions: ["@tessera/source"],
      skipLibCheck: true,
      types: ["node"],
      typeRoots: [join(ROOT, "node_modules/@types")],
      baseUrl: dir,
      paths: { "@tessera/client": [join(ROOT, "libs/client/src/index.ts")] },
      allowImportingTsExtensions: true,
    });
    const diagnostics = ts
      .getPreEmitDiagnostics(program)
      .map(
        (d) =>
          `${d.file?.fileName.split("/").pop()}:${d.file?.getLineAndCharacterOfPosition(d.start ?? 0).line}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`,
      );
    expect(diagnostics).toEqual([]);
  }, 60_000);

  it("refuses a name that is not an identifier", () => {
    const defs = parseDefinitionsYaml(readFileSync(join(ROOT, "examples/payments/features.yaml"), "utf8"));
    expect(() => clientTypes(defs, new Map(), { name: "not-a-name" })).toThrow("not a TypeScript identifier");
    // Without a schema for the source topic, column-typed ops fall back to any scalar.
    expect(clientTypes(defs, new Map())).toContain(
      '"card_activity:last_country": number | string | boolean;',
    );
  });
});

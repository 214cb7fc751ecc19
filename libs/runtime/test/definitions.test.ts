import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DefinitionsLoadError, loadDefinitions } from "../src/index.js";

const dir = mkdtempSync(join(tmpdir(), "runtime-defs-"));
const spec = {
  sources: [{ name: "s", topic: "t", entity: "id", timestamp: "ts" }],
  views: [{ name: "v", source: "s", features: [{ name: "n", op: "count", window: "1h" }] }],
};
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const problemOf = (path: string) =>
  loadDefinitions(path).then(
    () => "loaded",
    (error: unknown) => (error instanceof DefinitionsLoadError ? error.problem : `other: ${error}`),
  );

describe("loadDefinitions: one loader for the processor, the feature server and the CLI", () => {
  it("reads YAML, JSON and a JS module to the same view version", async () => {
    const yaml = await loadDefinitions(
      file(
        "f.yaml",
        "sources:\n  - { name: s, topic: t, entity: id, timestamp: ts }\nviews:\n  - name: v\n    source: s\n    features:\n      - { name: n, op: count, window: 1h }\n",
      ),
    );
    const json = await loadDefinitions(file("f.json", JSON.stringify(spec)));
    const mjs = await loadDefinitions(file("f.mjs", `export const definitions = ${JSON.stringify(spec)};`));
    expect(json.views[0]!.version).toBe(yaml.views[0]!.version);
    expect(mjs.views[0]!.version).toBe(yaml.views[0]!.version);
  });

  it("tells usage, unreadable and invalid apart, naming the file and each field", async () => {
    expect(await problemOf(join(dir, "f.txt"))).toBe("usage");
    await expect(loadDefinitions(join(dir, "f.txt"))).rejects.toThrow(
      /f\.txt: definitions must be \.yaml, \.yml, \.json/,
    );
    expect(await problemOf(join(dir, "missing.yaml"))).toBe("unreadable");
    await expect(loadDefinitions(join(dir, "missing.yaml"))).rejects.toThrow(
      /cannot read the definitions file \(ENOENT\)/,
    );
    expect(await problemOf(file("none.mjs", "export const other = 1;"))).toBe("unreadable");
    expect(await problemOf(file("broken.mjs", "export default {"))).toBe("unreadable");

    const bad = file(
      "bad.json",
      JSON.stringify({ ...spec, views: [{ ...spec.views[0], source: "nowhere" }] }),
    );
    const error = (await loadDefinitions(bad).catch((e: unknown) => e)) as DefinitionsLoadError;
    expect(error).toBeInstanceOf(DefinitionsLoadError);
    expect(error.problem).toBe("invalid");
    expect(error.message).toMatch(/bad\.json: invalid definitions\n {2}views\[0\]\.source: /);
    expect(error.issues[0]!.path).toBe("views[0].source");
  });
});

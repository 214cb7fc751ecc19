import { describe, expect, it } from "vitest";
import { deepMerge, envList, int, loadConfig, obj, str, strings } from "../src/index.js";

describe("config schema builders and deep merge", () => {
  it("build a schema loadConfig fills and checks: defaults, bounds, unknown keys", () => {
    const schema = obj({
      name: str("name", { minLength: 1 }),
      port: int("port", 8080, 1),
      brokers: strings("brokers", ["a:1"]),
      ops: obj({ host: str("host", { default: "127.0.0.1" }) }),
    });
    expect(loadConfig({ schema, envPrefix: "T", env: {} })).toEqual({
      port: 8080,
      brokers: ["a:1"],
      ops: { host: "127.0.0.1" },
    });
    expect(loadConfig({ schema, envPrefix: "T", env: { T_PORT: "9", T_BROKERS: "x:1, y:2" } })).toMatchObject(
      {
        port: 9,
        brokers: ["x:1", "y:2"],
      },
    );
    expect(() => loadConfig({ schema, envPrefix: "T", env: { T_PORT: "0" } })).toThrow(
      /port: must be >= 1 \(from T_PORT\)/,
    );
    expect(() => loadConfig({ schema, envPrefix: "T", env: {}, overrides: { ops: { port: 1 } } })).toThrow(
      /ops\.port: is not a known setting/,
    );
    expect(() => loadConfig({ schema, envPrefix: "T", env: {}, overrides: { name: "" } })).toThrow(
      /name: must NOT have fewer than 1/,
    );
  });

  it("deepMerge merges objects key by key and replaces arrays and scalars", () => {
    const base = { a: { b: 1, c: [1, 2] }, d: "x" };
    expect(deepMerge(base, { a: { c: [3] }, d: "y" })).toEqual({ a: { b: 1, c: [3] }, d: "y" });
    expect(base).toEqual({ a: { b: 1, c: [1, 2] }, d: "x" });
    expect(envList(" a , b")).toEqual(["a", "b"]);
    expect(envList("")).toBeUndefined();
  });
});

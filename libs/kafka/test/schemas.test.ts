/** Every schema under schemas/ is usable: each .avsc parses, each .proto compiles (protobufjs and protoc). */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import avro from "avsc";
import protobuf from "protobufjs";
import { describe, expect, it } from "vitest";
import { tesseraStateTopics, tesseraTopics } from "../src/topics.js";

const schemasDir = fileURLToPath(new URL("../../../schemas/", import.meta.url));
const avsc = readdirSync(`${schemasDir}avro`).filter((f) => f.endsWith(".avsc"));
const protos = readdirSync(`${schemasDir}proto`).filter((f) => f.endsWith(".proto"));

describe("Avro schemas", () => {
  it("has the schemas the platform publishes", () => {
    expect(avsc.sort()).toEqual(
      [
        "dead_letter.avsc",
        "drift_alert.avsc",
        "feature_update.avsc",
        "label.avsc",
        "payment_transaction.avsc",
        "prediction.avsc",
        "served_features.avsc",
      ].sort(),
    );
  });

  it.each(avsc)("%s parses and round-trips a random value", (file) => {
    const type = avro.Type.forSchema(JSON.parse(readFileSync(`${schemasDir}avro/${file}`, "utf8")));
    const value = type.random();
    expect(type.isValid(value)).toBe(true);
    expect(type.fromBuffer(type.toBuffer(value))).toEqual(value);
  });

  it("topics.json names only existing schema files", () => {
    const topics = JSON.parse(readFileSync(`${schemasDir}topics.json`, "utf8")) as Record<string, string>;
    for (const [topic, path] of Object.entries(topics)) {
      if (topic.startsWith("$")) continue;
      expect(avsc).toContain(path.replace("avro/", ""));
    }
  });
});

describe("protobuf schemas", () => {
  it.each(protos)("%s resolves with protobufjs", async (file) => {
    const root = await protobuf.load(`${schemasDir}proto/${file}`);
    root.resolveAll();
    const service = root.lookupService("tessera.v1.FeatureService");
    expect(Object.keys(service.methods)).toEqual(["GetOnlineFeatures"]);
  });

  it.each(protos)("%s compiles with protoc", (file) => {
    let output: string;
    try {
      output = execFileSync(
        "protoc",
        [`-I${schemasDir}proto`, "--descriptor_set_out=/dev/null", `${schemasDir}proto/${file}`],
        { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
      );
    } catch (error) {
      const e = error as { code?: string; stderr?: string };
      if (e.code === "ENOENT") throw new Error("protoc is missing: apt-get install -y protobuf-compiler");
      throw new Error(`protoc rejected ${file}:\n${e.stderr}`);
    }
    expect(output).toBe("");
  });
});

describe("topic names", () => {
  it("every Tessera topic default is mapped to a schema in schemas/topics.json, and nothing else is", () => {
    const mapped = JSON.parse(readFileSync(`${schemasDir}topics.json`, "utf8")) as Record<string, string>;
    const tessera = Object.keys(mapped).filter((topic) => topic.startsWith("tessera."));
    expect(Object.values(tesseraTopics).sort()).toEqual(tessera.sort());
    for (const topic of tessera) expect(avsc).toContain(mapped[topic]!.replace("avro/", ""));
  });

  it("a service's own state topic carries no registered schema and shares no name", () => {
    const mapped = JSON.parse(readFileSync(`${schemasDir}topics.json`, "utf8")) as Record<string, string>;
    const names = [...Object.values(tesseraTopics), ...Object.values(tesseraStateTopics)];
    expect(new Set(names).size).toBe(names.length);
    for (const topic of Object.values(tesseraStateTopics)) expect(mapped).not.toHaveProperty(topic);
  });
});

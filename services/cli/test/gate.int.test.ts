/** `tessera gate` against the real Kafka: trip, status, ack, override (bounded), release — each audited on the topic. */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createKafka, GateFollower } from "@tessera/kafka";
import { describe, expect, it } from "vitest";
import { services, uniqueName } from "../../../test/support/index.js";

const BIN = fileURLToPath(new URL("../bin/tessera.js", import.meta.url));
const topic = uniqueName("tessera.gate.cli");

async function tessera(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)("node", [BIN, "gate", ...args, "--topic", topic], {
      env: { ...process.env, KAFKA_BROKERS: services().KAFKA_BROKERS, KAFKAJS_NO_PARTITIONER_WARNING: "1" },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe("tessera gate (CLI) on Kafka", () => {
  it("trips, shows, acks, overrides for a bounded time and releases, with who and why on the topic", async () => {
    const who = ["--by", "alice", "--reason"];
    expect((await tessera("status")).stdout).toMatch(/no gate is tripped/);
    expect((await tessera("ack", "model:fraud-v1", ...who, "x")).stderr).toMatch(/not tripped/);
    const tripped = await tessera("trip", "model:fraud-v1", ...who, "bad deploy upstream", "--json");
    expect(tripped.code).toBe(0);
    expect(JSON.parse(tripped.stdout)).toMatchObject({ state: "tripped", causes: ["manual"], by: "alice" });
    expect((await tessera("ack", "model:fraud-v1", ...who, "looking")).stdout).toMatch(
      /model:fraud-v1: acked/,
    );
    const tooLong = await tessera("override", "model:fraud-v1", "--for", "25h", ...who, "x");
    expect(tooLong.code).toBe(2);
    expect(tooLong.stderr).toMatch(/for: must be at most 86400 s/);
    const over = await tessera(
      "override",
      "model:fraud-v1",
      "--for",
      "60s",
      ...who,
      "retrain deployed",
      "--json",
    );
    const state = JSON.parse(over.stdout);
    expect(state.state).toBe("overridden");
    expect(state.overrideUntil - state.at).toBe(60_000);
    expect((await tessera("status", "model:fraud-v1")).stdout).toMatch(/overridden until/);
    expect((await tessera("release", "model:fraud-v1", ...who, "fixed upstream")).stdout).toMatch(/: ok/);
    expect((await tessera("status")).stdout).toMatch(/no gate is tripped/);
    expect((await tessera("ack", "fraud", ...who, "x")).stderr).toMatch(
      /subject: "fraud" is not view:<name> or model:<name>/,
    );

    // The audit as any follower sees it: the released gate's last value before its tombstone.
    const seen: Array<{ action: string; by: string; note?: string }> = [];
    const follower = new GateFollower({
      kafka: createKafka({ brokers: services().KAFKA_BROKERS.split(",") }),
      topic,
      onChange: (_s, st) => {
        if (st) seen.splice(0, seen.length, ...st.log);
      },
    });
    await follower.start();
    await follower.caughtUp;
    await follower.stop();
    expect(seen.map((a) => `${a.action} ${a.by} ${a.note}`)).toEqual([
      "trip alice bad deploy upstream",
      "ack alice looking",
      "override alice retrain deployed",
      "release alice fixed upstream",
    ]);
  });
});

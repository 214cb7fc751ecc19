import { describe, expect, it } from "vitest";
import { GateFollower, GatePublisher, MemoryBroker } from "../src/index.js";

const topic = "tessera.gate";
const actor = (at: number) => ({ by: "alice", at, note: "checked the dashboards" });

describe("gate topic on the memory broker", () => {
  it("a follower started later catches up on the current states, then follows changes", async () => {
    const broker = new MemoryBroker();
    const kafka = broker.client();
    const publisher = new GatePublisher({ kafka, topic });
    await publisher.start();
    const now = Date.now();
    await publisher.observe("view:card", {
      cause: "drift_critical",
      active: true,
      at: now,
      by: "drift-worker",
    });
    await publisher.observe("model:m", {
      cause: "accuracy_floor",
      active: true,
      at: now,
      by: "drift-worker",
    });
    await publisher.release("model:m", actor(now + 1));

    const follower = new GateFollower({ kafka, topic });
    expect(follower.isCaughtUp).toBe(false);
    await follower.start();
    await follower.caughtUp;
    expect(follower.get("view:card")).toMatchObject({ state: "tripped", causes: ["drift_critical"] });
    expect(follower.get("model:m")).toBeUndefined(); // released: ok, then a tombstone

    const seen: string[] = [];
    const changed = new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (follower.get("view:card")?.state === "acked") {
          clearInterval(poll);
          resolve();
        }
      }, 5);
    });
    await publisher.ack("view:card", actor(now + 2));
    await changed;
    seen.push(follower.get("view:card")!.by);
    expect(seen).toEqual(["alice"]);
    await follower.stop();
    await publisher.stop();
  });

  it("an empty topic is caught up at once; observe publishes only changes; bad records are skipped", async () => {
    const broker = new MemoryBroker();
    const kafka = broker.client();
    const invalid: string[] = [];
    const follower = new GateFollower({ kafka, topic, onInvalid: (_e, key) => invalid.push(key) });
    await follower.start();
    await follower.caughtUp;
    const publisher = new GatePublisher({ kafka, topic, follower });
    await publisher.start();
    const at = Date.now();
    const trip = { cause: "freshness_sla" as const, active: true, at, by: "drift-worker" };
    await publisher.observe("view:card", trip);
    await publisher.observe("view:card", { ...trip, at: at + 1000 });
    expect(broker.topics.get(topic)!.partitions[0]!.length).toBe(1);
    broker.append(topic, { key: "view:bad", value: "{not json" });
    broker.appended.emit("append");
    await new Promise((r) => setTimeout(r, 150));
    expect(invalid).toEqual(["view:bad"]);
    expect(follower.get("view:card")!.state).toBe("tripped");
    await expect(publisher.override("view:card", { ...actor(at), forMs: 25 * 3_600_000 })).rejects.toThrow(
      /for: must be at most/,
    );
    await publisher.stop();
    await follower.stop();
  });
});

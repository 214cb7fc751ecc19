import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { type Bus, type BusConsumer, ConsumerLoop, MemoryBroker } from "../src/index.js";

/** The memory bus, with a consumer whose client-side crash the test fires by hand (as kafkajs's CRASH event). */
function crashableBus(options: { disconnectHangs?: boolean } = {}): {
  bus: Bus;
  crash: (error: Error, restart: boolean) => void;
} {
  const memory = new MemoryBroker().client();
  const listeners: ((error: Error, restart: boolean) => void)[] = [];
  const bus: Bus = {
    producer: (settings) => memory.producer(settings),
    admin: () => memory.admin(),
    consumer(settings): BusConsumer {
      const consumer = memory.consumer(settings);
      return Object.assign(Object.create(consumer) as BusConsumer, {
        onCrash(listener: (error: Error, restart: boolean) => void) {
          listeners.push(listener);
          return () => {};
        },
        // As leaving the group can when the coordinator's broker is gone.
        ...(options.disconnectHangs ? { disconnect: () => new Promise<void>(() => {}) } : {}),
      });
    },
  };
  const crash = (error: Error, restart: boolean) => {
    for (const listener of listeners) listener(error, restart);
  };
  return { bus, crash };
}

const loopOn = (bus: Bus) =>
  new ConsumerLoop({
    kafka: bus,
    groupId: "g",
    topics: ["t"],
    handleSignals: false,
    metricsRegistry: new Registry(),
    handleBatch: async () => {},
  });

describe("ConsumerLoop when its consumer crashes", () => {
  it("rejects done with the error when the client gives the consumer up for good", async () => {
    const { bus, crash } = crashableBus();
    const loop = loopOn(bus);
    const error = new Error("Failed to find group coordinator");
    crash(error, false);
    await expect(loop.done).rejects.toBe(error);
  });

  it("rejects done at once on the owner's fatal error, even while leaving the group hangs", async () => {
    const { bus } = crashableBus({ disconnectHangs: true });
    const loop = loopOn(bus);
    const error = new Error("a timed roll could not commit");
    loop.fail(error);
    await expect(loop.done).rejects.toBe(error);
  });

  it("lives on when the client restarts the consumer itself", async () => {
    const { bus, crash } = crashableBus();
    const loop = loopOn(bus);
    crash(new Error("Connection error: read ECONNRESET"), true);
    const outcome = await Promise.race([
      loop.done.then(
        () => "settled",
        () => "rejected",
      ),
      new Promise((r) => setTimeout(() => r("pending"), 50)),
    ]);
    expect(outcome).toBe("pending");
    await loop.stop();
    await expect(loop.done).resolves.toBeUndefined();
  });
});

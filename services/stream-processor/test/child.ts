/** Run the processor the way production does: its own process, config from a file. */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type BusProducer, createKafka } from "@tessera/kafka";
import { stringify } from "yaml";
import type { Payment } from "./fixtures.js";

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

export function writeConfig(dir: string, config: Record<string, unknown>): string {
  const file = join(dir, "processor.yaml");
  writeFileSync(file, stringify(config));
  return file;
}

/** Starts `main.ts` through tsx with the workspace sources; stdout and stderr go to `log`. */
export function spawnProcessor(configFile: string, log: string): ChildProcess {
  const child = spawn(
    process.execPath,
    [
      "--conditions=@tessera/source",
      "--import",
      "tsx",
      join(repoRoot, "services/stream-processor/src/main.ts"),
      "--config",
      configFile,
    ],
    {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, TESSERA_LOG_LEVEL: process.env["TESSERA_TEST_PROCESSOR_LOG"] ?? "warn" },
    },
  );
  const out = createWriteStream(log, { flags: "a" });
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  return child;
}

export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Publishes `events` at about `perSecond`, Confluent-framed with schema `id`, keyed by entity.
 * Resolves when all are acknowledged; retries a send while the broker is away.
 */
export async function paced(
  brokers: string[],
  topic: string,
  encode: (p: Payment) => Buffer,
  events: Payment[],
  perSecond: number,
  /**
   * Hold production while more than `limit` events wait to be consumed, so a backlog still flows
   * whenever a slow run gets to its fault steps (without it a slow store ends production first).
   */
  backlog?: { limit: number; consumed: () => Promise<number>; sent?: (n: number) => void },
): Promise<void> {
  const producer: BusProducer = createKafka({
    brokers,
    clientId: "fault-test-producer",
    retries: 10,
  }).producer({
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();
  try {
    const slice = Math.max(1, Math.round(perSecond / 10));
    const started = Date.now();
    for (let i = 0; i < events.length; i += slice) {
      while (backlog && i - (await backlog.consumed().catch(() => 0)) > backlog.limit) await sleep(200);
      const messages = events.slice(i, i + slice).map((e) => ({ key: e.card_id, value: encode(e) }));
      for (let attempt = 0; ; attempt++) {
        try {
          await producer.send({ topic, acks: -1, messages });
          backlog?.sent?.(i + messages.length);
          break;
        } catch (error) {
          if (attempt > 240) throw error;
          await sleep(500);
        }
      }
      const due = started + ((i + slice) / perSecond) * 1000;
      if (due > Date.now()) await sleep(due - Date.now());
    }
  } finally {
    await producer.disconnect();
  }
}

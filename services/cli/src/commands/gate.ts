import { createKafka, DEFAULT_GATE_TOPIC, GatePublisher } from "@tessera/kafka";
import {
  DEFAULT_GATE_OPTIONS,
  GateError,
  type GateState,
  parseDuration,
  parseGateSubject,
} from "@tessera/transforms";
import type { Command } from "commander";
import { CliError, exitCodes } from "../errors.js";

interface Common {
  topic: string;
  json?: boolean;
}
interface Acting extends Common {
  by: string;
  reason: string;
}

/** Connects a publisher (it reads the current states first), runs `act`, disconnects. */
async function withGates<T>(options: Common, act: (gates: GatePublisher) => Promise<T>): Promise<T> {
  let kafka: ReturnType<typeof createKafka>;
  try {
    kafka = createKafka({ clientId: "tessera-cli-gate" });
  } catch (error) {
    throw new CliError((error as Error).message, exitCodes.unavailable);
  }
  const gates = new GatePublisher({ kafka, topic: options.topic, clientId: "tessera-cli-gate" });
  try {
    await gates.start();
  } catch (error) {
    await gates.stop().catch(() => {});
    throw new CliError(`gate topic ${options.topic}: ${(error as Error).message}`, exitCodes.unavailable);
  }
  try {
    return await act(gates);
  } catch (error) {
    if (error instanceof GateError) throw new CliError(error.message, exitCodes.usage);
    throw error;
  } finally {
    await gates.stop();
  }
}

const subjectOf = (text: string) => {
  try {
    parseGateSubject(text);
    return text;
  } catch (error) {
    throw new CliError((error as Error).message, exitCodes.usage);
  }
};

export function formatGate(state: GateState, now = Date.now()): string {
  const ago = (t: number) => `${Math.round((now - t) / 1000)} s ago`;
  const parts = [`${state.subject}: ${state.state}`];
  if (state.causes.length > 0) parts.push(`causes ${state.causes.join(", ")}`);
  if (state.state !== "ok") parts.push(`since ${new Date(state.since).toISOString()} (${ago(state.since)})`);
  if (state.clearingSince !== undefined) parts.push(`clearing since ${ago(state.clearingSince)}`);
  if (state.overrideUntil !== undefined)
    parts.push(`overridden until ${new Date(state.overrideUntil).toISOString()}`);
  if (state.incident) parts.push(`incident ${state.incident}`);
  const last = `last: ${state.by}${state.note ? ` — ${state.note}` : ""} (${ago(state.at)})`;
  return `${parts.join(", ")}\n  ${last}`;
}

function print(state: GateState | GateState[], json: boolean | undefined): void {
  const list = Array.isArray(state) ? state : [state];
  if (json) console.log(JSON.stringify(Array.isArray(state) ? list : state, null, 2));
  else if (list.length === 0) console.log("no gate is tripped");
  else for (const s of list) console.log(formatGate(s));
}

export function register(program: Command): void {
  const gate = program
    .command("gate")
    .description(
      "Quality gates: see, acknowledge, override for a bounded time, or release (audited on the gate topic)",
    );
  const common = (cmd: Command) =>
    cmd
      .option("--topic <topic>", "the compacted gate topic", DEFAULT_GATE_TOPIC)
      .option("--json", "print the state as JSON");
  const acting = (cmd: Command) =>
    common(cmd)
      .requiredOption("--by <who>", "who acts (recorded in the gate's audit log)")
      .requiredOption("--reason <why>", "why (recorded in the gate's audit log)");

  common(gate.command("status"))
    .addHelpText("after", "\nExamples:\n  tessera gate status\n  tessera gate status model:fraud-v1 --json\n")
    .description("Gates that are not ok (or one subject's, ok included), as every feature server serves them")
    .argument("[subject]", "view:<name> or model:<name>")
    .action(async (subject: string | undefined, options: Common) => {
      const wanted = subject === undefined ? undefined : subjectOf(subject);
      const states = await withGates(options, async (gates) => gates.status(wanted));
      print(states, options.json);
    });

  acting(gate.command("ack"))
    .addHelpText(
      "after",
      "\nExamples:\n  tessera gate ack model:fraud-v1 --by alice --reason 'labels delayed, checking'\n",
    )
    .description(
      "Acknowledge a tripped gate: it stays tripped (values still quarantined or refused), not re-paged",
    )
    .argument("<subject>", "view:<name> or model:<name>")
    .action(async (subject: string, options: Acting) => {
      const state = await withGates(options, (gates) =>
        gates.ack(subjectOf(subject), { by: options.by, at: Date.now(), note: options.reason }),
      );
      print(state, options.json);
    });

  acting(gate.command("override"))
    .addHelpText(
      "after",
      "\nExamples:\n  tessera gate override model:fraud-v1 --for 60s --by alice --reason 'retrain deployed'\n",
    )
    .description(
      "Serve a tripped gate's views normally for a bounded time; then it is tripped (acked) again by itself",
    )
    .argument("<subject>", "view:<name> or model:<name>")
    .requiredOption(
      "--for <duration>",
      `how long, e.g. 60s, 30m (at most ${DEFAULT_GATE_OPTIONS.maxOverrideMs / 3_600_000}h)`,
    )
    .action(async (subject: string, options: Acting & { for: string }) => {
      const forMs = parseDuration(options.for);
      if (forMs === undefined)
        throw new CliError(`--for: "${options.for}" is not a duration (e.g. 60s, 30m)`, exitCodes.usage);
      const state = await withGates(options, (gates) =>
        gates.override(subjectOf(subject), { by: options.by, at: Date.now(), note: options.reason, forMs }),
      );
      print(state, options.json);
    });

  acting(gate.command("release"))
    .addHelpText(
      "after",
      "\nExamples:\n  tessera gate release view:card_activity --by alice --reason 'replayed batch, not drift'\n",
    )
    .description("Release a tripped gate now (a cause still active trips it again when next observed)")
    .argument("<subject>", "view:<name> or model:<name>")
    .action(async (subject: string, options: Acting) => {
      const state = await withGates(options, (gates) =>
        gates.release(subjectOf(subject), { by: options.by, at: Date.now(), note: options.reason }),
      );
      print(state, options.json);
    });

  acting(gate.command("trip"))
    .addHelpText(
      "after",
      "\nExamples:\n  tessera gate trip view:card_activity --by alice --reason 'bad upstream deploy'\n",
    )
    .description("Halt by hand: trip a gate with cause manual (cleared by release)")
    .argument("<subject>", "view:<name> or model:<name>")
    .action(async (subject: string, options: Acting) => {
      const state = await withGates(options, (gates) =>
        gates.observe(subjectOf(subject), {
          cause: "manual",
          active: true,
          at: Date.now(),
          by: options.by,
          note: options.reason,
        }),
      );
      print(state!, options.json);
    });
}

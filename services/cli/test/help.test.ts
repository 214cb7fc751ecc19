import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { commands } from "../src/commands/index.js";
import { documentCommands } from "../src/help.js";

function cli(): Command {
  const program = new Command().name("tessera").exitOverride();
  for (const register of commands) register(program);
  documentCommands(program);
  return program;
}

/** The help text of a (sub)command, as `--help` prints it. */
function helpOf(command: Command): string {
  let text = "";
  command.configureOutput({ writeOut: (s) => (text += s), writeErr: (s) => (text += s) });
  command.outputHelp();
  return text;
}

describe("tessera --help", () => {
  it("lists the exit codes and where connection settings come from", () => {
    const help = helpOf(cli());
    expect(help).toMatch(/Exit codes:[\s\S]*\b2\b\s+wrong flags[\s\S]*\b4\b\s+a service/);
    expect(help).toContain("KAFKA_BROKERS");
  });

  it("gives every command an example, and every example names its own command", () => {
    for (const command of cli().commands) {
      const leaves = command.commands.length > 0 ? command.commands : [command];
      for (const leaf of leaves) {
        const help = helpOf(leaf);
        expect(help, `tessera ${command.name()} ${leaf === command ? "" : leaf.name()}`).toMatch(
          /Examples?:/,
        );
        const exampleLines = help
          .split(/Examples?:/)[1]!
          .split("\n")
          .filter((l) => l.trim().startsWith("tessera "));
        expect(exampleLines.length).toBeGreaterThan(0);
        for (const line of exampleLines) expect(line.trim().split(/\s+/)[1]).toBe(command.name());
      }
    }
  });

  it("offers --json on every command whose output is data", () => {
    for (const name of ["validate", "snapshot", "drift", "backfill", "consistency", "demo"]) {
      const command = cli().commands.find((c) => c.name() === name)!;
      expect(
        command.options.map((o) => o.long),
        name,
      ).toContain("--json");
    }
  });
});

import type { Command } from "commander";

/** Each command module exports one `register(program)`; add new commands here. */
export const commands: Array<(program: Command) => void> = [];

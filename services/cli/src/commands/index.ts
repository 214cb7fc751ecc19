import type { Command } from "commander";
import { register as drift } from "./drift.js";

/** Each command module exports one `register(program)`; add new commands here. */
export const commands: Array<(program: Command) => void> = [drift];

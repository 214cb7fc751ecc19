import type { Command } from "commander";
import { register as backfill } from "./backfill.js";
import { register as codegen } from "./codegen.js";
import { register as consistency } from "./consistency.js";
import { register as demo } from "./demo.js";
import { register as drift } from "./drift.js";
import { register as gate } from "./gate.js";
import { register as lineage } from "./lineage.js";
import { register as profile } from "./profile.js";
import { register as schemas } from "./schemas.js";
import { register as slo } from "./slo.js";
import { register as snapshot } from "./snapshot.js";
import { register as topics } from "./topics.js";
import { register as validate } from "./validate.js";

/** Each command module exports one `register(program)`; add new commands here. */
export const commands: Array<(program: Command) => void> = [
  demo,

  backfill,
  codegen,
  consistency,
  drift,
  validate,
  snapshot,
  schemas,
  topics,
  profile,
  slo,
  lineage,
  gate,
];

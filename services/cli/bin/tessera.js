#!/usr/bin/env node
// Thin launcher: the CLI is TypeScript compiled to dist/. Say how to build it rather than crash.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const main = new URL("../dist/main.js", import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  console.error("tessera: the CLI is not built yet. Run `npm run build` in the repository root first.");
  process.exit(2);
}
await import(main.href);

/**
 * Builds the sample reference profile the drift worker starts with (k8s/base/config/reference.json),
 * the way an operator builds a real one: events → `tessera snapshot --full-names` at spine times →
 * a profile of the snapshot's feature columns. The events are a seeded synthetic payments stream, so
 * replace the output with a profile of your own data before trusting drift alerts.
 *
 *   npm run build && npx tsx deploy/sample-reference.ts
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildProfile, seededUniform } from "@tessera/stats";

const root = new URL("..", import.meta.url).pathname;
const definitions = join(root, "k8s/base/config/definitions.yaml");
const out = join(root, "k8s/base/config/reference.json");

// Seeded, so the sample is the same on every run.
const random = seededUniform(20_261_122);
const pick = <T>(items: T[], weights: number[]) => {
  let r = random() * weights.reduce((a, b) => a + b, 0);
  for (const [i, w] of weights.entries()) {
    r -= w;
    if (r < 0) return items[i]!;
  }
  return items.at(-1)!;
};
const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());

const end = Date.UTC(2026, 10, 1);
const day = 86_400_000;
const countries = ["US", "GB", "DE", "FR", "CA"];
const events: string[] = [];
for (let i = 0; i < 60_000; i++) {
  const card = `card-${Math.floor(random() ** 2 * 2_000)}`; // some cards are far busier than others
  events.push(
    JSON.stringify({
      transaction_id: `t${i}`,
      card_id: card,
      merchant_id: `m${Math.floor(random() * 500)}`,
      amount: Math.round(Math.exp(3.5 + 1.1 * normal()) * 100) / 100,
      currency: "USD",
      country: pick(countries, [70, 10, 8, 7, 5]),
      event_time: end - Math.floor(random() * 8 * day),
    }),
  );
}
const spine = ["card_id,timestamp"];
for (let i = 0; i < 5_000; i++) {
  spine.push(`card-${Math.floor(random() ** 2 * 2_000)},${end - Math.floor(random() * day)}`);
}

const dir = mkdtempSync(join(tmpdir(), "tessera-reference-"));
writeFileSync(join(dir, "events.jsonl"), `${events.join("\n")}\n`);
writeFileSync(join(dir, "spine.csv"), `${spine.join("\n")}\n`);
execFileSync(
  process.execPath,
  [
    join(root, "services/cli/bin/tessera.js"),
    "snapshot",
    "--definitions",
    definitions,
    "--events",
    join(dir, "events.jsonl"),
    "--spine",
    join(dir, "spine.csv"),
    "--out",
    join(dir, "snapshot.jsonl"),
    "--full-names",
  ],
  { stdio: "inherit" },
);
const rows = readFileSync(join(dir, "snapshot.jsonl"), "utf8")
  .split("\n")
  .filter(Boolean)
  .map((line) => JSON.parse(line) as Record<string, unknown>);
const columns = Object.keys(rows[0]!).filter((c) => c.includes("__"));
const profile = buildProfile(rows, { columns, k: 200 });
writeFileSync(out, `${JSON.stringify(profile)}\n`);
// In the repository's JSON style, so `npm run lint` passes on the regenerated file.
execFileSync("npx", ["biome", "format", "--write", out], { cwd: root, stdio: "ignore" });
console.log(`wrote ${out}: ${rows.length} rows, columns ${columns.join(", ")}`);

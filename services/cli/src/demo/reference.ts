/** The demo's reference: a point-in-time snapshot of the archived reference payments, profiled. */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildProfile, type ReferenceProfile } from "@tessera/stats";
import { readRows, runSnapshot } from "@tessera/stores";
import type { DemoOptions } from "./run.js";

/** Snapshot the card features just after each archived reference payment, then profile them. */
export async function buildReference(
  options: DemoOptions,
  archiveDir: string,
  from: number,
  until: number,
  predictions: Array<Record<string, unknown>>,
  say: (line: string) => void,
): Promise<{ snapshot: string; profile: string; profileData: ReferenceProfile }> {
  const spine: string[] = ["card_id,timestamp"];
  for await (const row of readRows(archiveDir, { columns: ["card_id", "event_time"] })) {
    const t = Number(row["event_time"]);
    // The processor publishes values right after an event: the reference looks at the same moments.
    if (t >= from && t < until) spine.push(`${row["card_id"]},${t + 1}`);
  }
  const spinePath = join(options.outDir, "spine.csv");
  writeFileSync(spinePath, `${spine.join("\n")}\n`);
  const snapshot = join(options.outDir, "reference-snapshot.parquet");
  const summary = await runSnapshot({
    selections: options.definitions.views.map((view) => ({ view, features: view.features.map((_, i) => i) })),
    events: archiveDir,
    spine: spinePath,
    out: snapshot,
    fullNames: true,
  });
  const featureColumns = summary.columns.filter((c) => c.includes("__"));
  const rows: Record<string, unknown>[] = [];
  for await (const row of readRows(snapshot, { columns: featureColumns })) rows.push(row);
  const features = buildProfile(rows, { columns: featureColumns });
  const scores = buildProfile(predictions);
  const profile: ReferenceProfile = { ...features, features: { ...features.features, ...scores.features } };
  const profilePath = join(options.outDir, "reference-profile.json");
  writeFileSync(profilePath, JSON.stringify(profile));
  say(
    `  reference: point-in-time snapshot of ${summary.spineRows} rows × ${featureColumns.length} features → ${snapshot}` +
      ` (+ ${predictions.length} model scores)`,
  );
  say(`             profile → ${profilePath}`);
  return { snapshot, profile: profilePath, profileData: profile };
}

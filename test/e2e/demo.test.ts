/**
 * The README's main command, as a user runs it: `tessera demo` serves features, fires the drift alert
 * only after drift is injected, shows it on the dashboard in a real browser, and stops cleanly on Ctrl-C.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const chromiumPath = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium";
const artifacts = join(repoRoot, "test-artifacts");

class Output {
  lines: string[] = [];
  private waiters: Array<{ pattern: RegExp; resolve: (m: RegExpMatchArray) => void }> = [];
  constructor(child: ChildProcess) {
    let partial = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      partial += chunk.toString();
      const complete = partial.split("\n");
      partial = complete.pop()!;
      for (const line of complete) this.add(line);
    });
    child.stderr!.on("data", (chunk: Buffer) => this.add(`[stderr] ${chunk.toString().trimEnd()}`));
  }
  private add(line: string) {
    this.lines.push(line);
    for (const waiter of [...this.waiters]) {
      const match = line.match(waiter.pattern);
      if (match) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve(match);
      }
    }
  }
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    for (const line of this.lines) {
      const match = line.match(pattern);
      if (match) return Promise.resolve(match);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(`no line matching ${pattern} in ${timeoutMs} ms; output:\n${this.lines.join("\n")}`),
          ),
        timeoutMs,
      );
      this.waiters.push({
        pattern,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
    });
  }
}

describe("tessera demo", () => {
  let child: ChildProcess | undefined;
  afterAll(() => {
    if (child && child.exitCode === null) child.kill("SIGKILL");
  });

  it("serves features, alerts on injected drift only, shows it on the dashboard, exits cleanly", async () => {
    if (!existsSync(chromiumPath)) {
      throw new Error(
        `Chromium not found at ${chromiumPath}: apt-get install -y chromium (or set CHROMIUM_PATH)`,
      );
    }
    const out = mkdtempSync(join(tmpdir(), "tessera-demo-"));
    // Exactly what `npm run demo` runs after building (the README's main command), plus test flags.
    const scripts = (
      JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { scripts: Record<string, string> }
    ).scripts;
    const [node, ...command] = scripts["demo"]!.split("&&").at(-1)!.trim().split(/\s+/);
    expect(node).toBe("node");
    child = spawn(process.execPath, [...command, "--duration", "90", "--port", "0", "--out", out], {
      cwd: repoRoot,
      env: { ...process.env, TESSERA_LOG_LEVEL: "error" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const output = new Output(child);
    const exited = new Promise<number | null>((resolve) => child!.once("exit", (code) => resolve(code)));

    const [, dashboardUrl] = await output.waitFor(/dashboard: (http:\/\/\S+)/, 60_000);
    await output.waitFor(/phase 3\/3: injecting drift/, 150_000);
    const injectedAt = output.lines.length;
    const [alertLine] = await output.waitFor(
      /ALERT FIRING .*(card_activity:last_country|fraud-v1:score).*/,
      90_000,
    );
    // Nothing fired while the traffic matched the reference.
    expect(output.lines.slice(0, injectedAt).filter((l) => l.includes("ALERT FIRING"))).toEqual([]);
    expect(alertLine).toMatch(/(chi_squared|psi|ks|js) [0-9.]+ ≥/);
    // The critical incident trips the card view's gate (its own, or its model's), never before the
    // drift; the feature server then serves the card's values marked quarantined.
    const [gateLine] = await output.waitFor(
      /GATE (view:card_activity|model:fraud-v1) tripped \(drift_critical/,
      60_000,
    );
    expect(output.lines.slice(0, injectedAt).filter((l) => l.includes("GATE"))).toEqual([]);
    await output.waitFor(/served card-\S+: .*\[quarantined: quality gate\]/, 30_000);

    const browser = await chromium.launch({
      executablePath: chromiumPath,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
      await page.goto(dashboardUrl!);
      await page.waitForSelector('body[data-ready="true"]', { timeout: 20_000 });
      const firing = page.locator('[data-testid="alert"][data-status="FIRING"]');
      await firing.first().waitFor({ timeout: 20_000 });
      const subjects = await firing.evaluateAll((rows) => rows.map((r) => r.getAttribute("data-subject")));
      expect(subjects.some((s) => s === "card_activity:last_country" || s === "fraud-v1:score")).toBe(true);
      // The drifted feature's card shows it, with reference and current histograms drawn.
      const drifted = page.locator(`[data-testid="feature-card"][data-subject="${subjects[0]}"]`);
      expect(await drifted.getAttribute("data-severity")).toMatch(/warn|critical/);
      expect(await drifted.locator("svg.hist rect").count()).toBeGreaterThan(0);
      expect(await page.locator("#freshness tbody tr").count()).toBeGreaterThan(0);
      // The pipeline: who owns each item, its gate (tripped, as the demo printed), its lineage; the SLOs.
      const gated = /GATE (\S+) /.exec(gateLine!)![1]!.split(":");
      const item = page.locator(
        `[data-testid="pipeline-item"][data-kind="${gated[0]}"][data-name="${gated[1]}"][data-gate="tripped"]`,
      );
      await item.waitFor({ timeout: 20_000 });
      expect(await item.getAttribute("data-owner")).toBe(gated[0] === "view" ? "risk-features" : "fraud-ml");
      const view = page.locator('[data-testid="pipeline-item"][data-kind="view"][data-name="card_activity"]');
      expect(await view.locator(".lineage").textContent()).toMatch(
        /^card_activity@\S+ ← payments\.transactions \(payments\.transactions-value\)/,
      );
      const fresh = page.locator('[data-testid="slo"][data-name="card_features_fresh"]');
      expect(Number(await fresh.getAttribute("data-budget"))).toBeGreaterThan(0);
      expect(await page.locator('[data-testid="slo"][data-name="serving_latency"]').textContent()).toContain(
        "Prometheus",
      );
      mkdirSync(artifacts, { recursive: true });
      await page.screenshot({ path: join(artifacts, "dashboard.png"), fullPage: true });
    } finally {
      await browser.close();
    }

    // A feature request the way the demo's banner says to make it.
    const [, featuresUrl] = output.lines.join("\n").match(/curl -s '(http:\/\/[^']+)'/)!;
    const response = await fetch(featuresUrl!);
    expect(response.status).toBe(200);
    const body = (await response.json()) as {
      entities: { card_id: { results: Array<{ statuses: string[] }> } };
    };
    // Served: quarantined while the drift (and so the gate) lasts, which it does to the demo's end.
    expect(body.entities.card_id.results[0]!.statuses).toContain("quarantined");

    child.kill("SIGINT");
    expect(await exited).toBe(0);
    const summary = output.lines.find((l) => l.startsWith("done:"));
    expect(summary).toMatch(/[1-9]\d* alert\(s\) fired/);
    expect(output.lines.find((l) => l.includes("served:"))).not.toContain("nothing yet");
    expect(existsSync(join(out, "reference-snapshot.parquet"))).toBe(true);
    expect(existsSync(join(out, "reference-profile.json"))).toBe(true);
  }, 300_000);
});

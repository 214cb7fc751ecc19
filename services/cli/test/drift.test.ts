import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Command } from "commander";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { register } from "../src/commands/drift.js";
import { CliError, exitCodes } from "../src/errors.js";

let dir: string;
let ref: string;
let same: string;
let shifted: string;

/** Deterministic pseudo-normal values (sum of uniforms from an LCG). */
function values(seed: number, n: number, shift: number): number[] {
  let s = seed;
  const uniform = () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
  return Array.from({ length: n }, () => uniform() + uniform() + uniform() + uniform() - 2 + shift);
}

async function csv(
  name: string,
  seed: number,
  n: number,
  shift: number,
  countries: string[],
): Promise<string> {
  const xs = values(seed, n, shift);
  const lines = xs.map(
    (x, i) => `${x.toFixed(6)},${countries[i % countries.length]},${i % 3 === 0 ? "" : i % 2}`,
  );
  const path = join(dir, name);
  await writeFile(path, `amount,country,score\n${lines.join("\n")}\n`);
  return path;
}

async function run(...args: string[]): Promise<string> {
  const program = new Command().exitOverride();
  register(program);
  const writes: string[] = [];
  const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
    writes.push(String(chunk));
    return true;
  });
  try {
    await program.parseAsync(["drift", ...args], { from: "user" });
  } finally {
    spy.mockRestore();
  }
  return writes.join("");
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tessera-drift-"));
  ref = await csv("ref.csv", 1, 2000, 0, ["DE", "FR", "US"]);
  same = await csv("same.csv", 2, 1500, 0, ["FR", "US", "DE"]);
  shifted = await csv("shifted.csv", 3, 1500, 0.5, ["DE", "FR", "US", "BR"]);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("tessera drift", () => {
  it("--json: every common column with the documented keys; no drift on same-distribution data", async () => {
    const out = JSON.parse(await run("--reference", ref, "--current", same, "--json"));
    expect(Object.keys(out.features)).toEqual(["amount", "country", "score"]);
    expect(out.features.amount).toMatchObject({
      type: "numerical",
      chiSquared: null,
      drift: false,
      severity: "ok",
    });
    expect(Object.keys(out.features.amount).sort()).toEqual(
      ["chiSquared", "drift", "js", "ks", "psi", "severity", "type", "wasserstein"].sort(),
    );
    expect(out.features.amount.ks.pValue).toBeGreaterThan(0.01);
    expect(out.features.country).toMatchObject({
      type: "categorical",
      ks: null,
      psi: null,
      wasserstein: null,
    });
    expect(out.features.country.chiSquared.dof).toBe(2);
    expect(out.features.country.chiSquared.pValue).toBeGreaterThan(0.99); // 667/667/666 vs 500/500/500
    expect(out.features.country.drift).toBe(false);
    expect(out.features.score.type).toBe("numerical");
  });

  it("flags a mean shift and a new category", async () => {
    const out = JSON.parse(await run("--reference", ref, "--current", shifted, "--json"));
    expect(out.features.amount).toMatchObject({ drift: true, severity: "critical" });
    expect(out.features.amount.psi).toBeGreaterThan(0.25);
    expect(out.features.country).toMatchObject({ drift: true });
    expect(out.features.country.chiSquared.dof).toBe(3);
    expect(out.features.score.drift).toBe(false);
  });

  it("--columns and --exclude choose the columns", async () => {
    const only = JSON.parse(
      await run("--reference", ref, "--current", shifted, "--json", "--columns", "amount,score"),
    );
    expect(Object.keys(only.features)).toEqual(["amount", "score"]);
    const without = JSON.parse(
      await run("--reference", ref, "--current", shifted, "--json", "--exclude", "amount"),
    );
    expect(Object.keys(without.features)).toEqual(["country", "score"]);
  });

  it("prints a table by default", async () => {
    const out = await run("--reference", ref, "--current", shifted);
    expect(out.split("\n")[0]).toMatch(/^column\s+type\s+KS D\s+KS p\s+PSI\s+JS/);
    expect(out).toMatch(/^amount\s+numerical .* CRITICAL$/m);
    expect(out).toContain("2 of 3 column(s) drifted");
  });

  it("--fail-on-drift fails only when something drifted; unreadable input is an input error", async () => {
    await expect(run("--reference", ref, "--current", same, "--fail-on-drift", "--json")).resolves.toContain(
      "features",
    );
    await expect(run("--reference", ref, "--current", shifted, "--fail-on-drift")).rejects.toMatchObject({
      exitCode: exitCodes.failed,
    });
    const missing = run("--reference", join(dir, "missing.csv"), "--current", same);
    await expect(missing).rejects.toBeInstanceOf(CliError);
    await expect(missing).rejects.toMatchObject({ exitCode: exitCodes.input });
  });

  it("runs as a process with the documented exit codes", { timeout: 30_000 }, async () => {
    const main = fileURLToPath(new URL("../src/main.ts", import.meta.url));
    const node = (...args: string[]) =>
      promisify(execFile)(process.execPath, [
        "--conditions=@tessera/source",
        "--import",
        "tsx",
        main,
        "drift",
        ...args,
      ]);
    const ok = await node("--reference", ref, "--current", same, "--json", "--fail-on-drift");
    expect(JSON.parse(ok.stdout).features.amount.drift).toBe(false);
    await expect(node("--reference", ref, "--current", shifted, "--fail-on-drift")).rejects.toMatchObject({
      code: exitCodes.failed,
      stderr: expect.stringContaining("drift in 2 column(s): amount, country"),
    });
  });
});

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
// mulberry32 is the 32-bit generator the oracle script also implements.
import { mulberry32 } from "../src/random.js";

export { mulberry32 };

/** A replayable sample, generated identically by test/oracles/scipy/generate.py. */
export interface SampleSpec {
  seed: number;
  n: number;
  scale: number;
  shift: number;
  grid: number;
}

/** Same arithmetic as `sample()` in generate.py; every step is exact in binary64. */
export function sample(spec: SampleSpec): number[] {
  const draw = mulberry32(spec.seed);
  const out: number[] = [];
  for (let i = 0; i < spec.n; i++) {
    const v = draw() + draw() + draw() + draw();
    let x = ((v - 2 ** 33) / 2 ** 32) * spec.scale + spec.shift;
    if (spec.grid) x = Math.floor(x * spec.grid) / spec.grid;
    out.push(x);
  }
  return out;
}

const path = fileURLToPath(new URL("../../../test/oracles/scipy/vectors.json", import.meta.url));
// biome-ignore lint/suspicious/noExplicitAny: the JSON's shape is checked by the tests that read it
export const vectors: any = JSON.parse(readFileSync(path, "utf8"));

/** The tolerance: 1e-6 absolute, or 1e-4 relative when the expected p-value is below 1e-3. */
export function pValueError(actual: number, expected: number): { ok: boolean; abs: number; rel: number } {
  const abs = Math.abs(actual - expected);
  const rel = expected === 0 ? (actual === 0 ? 0 : Number.POSITIVE_INFINITY) : abs / Math.abs(expected);
  const ok = expected < 1e-3 ? rel <= 1e-4 || abs <= 1e-300 : abs <= 1e-6;
  return { ok, abs, rel };
}

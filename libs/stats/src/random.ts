/**
 * mulberry32: a small seeded 32-bit generator, the same on every machine, so sketches, synthetic
 * data and test oracles reproduce from a seed. Not for anything that must be unpredictable.
 */
export class Mulberry32 {
  /** The whole state: save it and `new Mulberry32(state)` continues the same stream. */
  state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** The next unsigned 32-bit integer. */
  uint32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** The next number in [0, 1). */
  float(): number {
    return this.uint32() / 4294967296;
  }
}

/** A draw function of unsigned 32-bit integers from `seed`. */
export function mulberry32(seed: number): () => number {
  const generator = new Mulberry32(seed);
  return () => generator.uint32();
}

/** A draw function of numbers in [0, 1) from `seed`. */
export function seededUniform(seed: number): () => number {
  const generator = new Mulberry32(seed);
  return () => generator.float();
}

/**
 * A least-recently-used map bounded in bytes, not entries: what a caller can put in (a plan for
 * 500 references, a principal with a long JWT subject) varies by orders of magnitude, so only a
 * byte budget bounds the memory. Sizes are estimates from `sizeOf`, which must not undercount.
 */
export class ByteBoundedCache<V> {
  private readonly entries = new Map<string, { value: V; bytes: number }>();
  private used = 0;

  constructor(
    readonly maxBytes: number,
    private readonly sizeOf: (key: string, value: V) => number,
  ) {}

  /** Bytes held (estimated), never above maxBytes. */
  get bytes(): number {
    return this.used;
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    // Most recently used last: eviction takes from the front.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  /** Stores the value, evicting the least recently used; a value larger than the budget is not kept. */
  set(key: string, value: V): void {
    this.delete(key);
    const bytes = this.sizeOf(key, value);
    if (bytes > this.maxBytes) return;
    this.entries.set(key, { value, bytes });
    this.used += bytes;
    while (this.used > this.maxBytes) this.delete(this.entries.keys().next().value!);
  }

  delete(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.used -= entry.bytes;
  }
}

/** A JS string's heap footprint, conservatively: two bytes per UTF-16 unit plus the header. */
export const stringBytes = (value: string) => 2 * value.length + 32;

/** Little binary writer/reader for tile state: varints, float64s, strings and tagged scalar values. */
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class ByteWriter {
  private buffer = new Uint8Array(32);
  private view = new DataView(this.buffer.buffer);
  private length = 0;

  private reserve(extra: number): void {
    if (this.length + extra <= this.buffer.length) return;
    const next = new Uint8Array(Math.max(this.buffer.length * 2, this.length + extra));
    next.set(this.buffer.subarray(0, this.length));
    this.buffer = next;
    this.view = new DataView(next.buffer);
  }

  u8(value: number): this {
    this.reserve(1);
    this.buffer[this.length++] = value;
    return this;
  }

  /** Unsigned LEB128, for counts and lengths (exact up to 2^53). */
  varuint(value: number): this {
    let rest = value;
    while (rest >= 0x80) {
      this.u8((rest % 0x80) | 0x80);
      rest = Math.floor(rest / 0x80);
    }
    return this.u8(rest);
  }

  /** Signed integer as zigzag varint (bucket indexes). */
  varint(value: number): this {
    return this.varuint(value < 0 ? -2 * value - 1 : 2 * value);
  }

  f64(value: number): this {
    this.reserve(8);
    this.view.setFloat64(this.length, value, true);
    this.length += 8;
    return this;
  }

  bytes(value: Uint8Array): this {
    this.varuint(value.length);
    this.reserve(value.length);
    this.buffer.set(value, this.length);
    this.length += value.length;
    return this;
  }

  string(value: string): this {
    const n = value.length;
    // ASCII text (ids, codes, categories): its UTF-8 bytes are its char codes, no encoder call.
    if (n < 0x80) {
      this.reserve(1 + n);
      const buffer = this.buffer;
      const at = this.length + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = value.charCodeAt(i);
        if (c >= 0x80) break;
        buffer[at + i] = c;
      }
      if (i === n) {
        buffer[at - 1] = n;
        this.length = at + n;
        return this;
      }
    }
    return this.bytes(encoder.encode(value));
  }

  /** A scalar feature input: null, number, string, boolean; anything else as JSON text. */
  value(value: unknown): this {
    if (value === null || value === undefined) return this.u8(0);
    if (typeof value === "number") return this.u8(1).f64(value);
    if (typeof value === "string") return this.u8(2).string(value);
    if (typeof value === "boolean") return this.u8(value ? 3 : 4);
    return this.u8(5).string(JSON.stringify(value));
  }

  /** Bytes written so far. */
  get size(): number {
    return this.length;
  }

  /** A copy of what was written. */
  finish(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }

  /** What was written, as a view into the writer's buffer: valid until the next write or reset. */
  written(): Uint8Array {
    return this.buffer.subarray(0, this.length);
  }

  /** Empties the writer for reuse; its buffer is kept. */
  reset(): this {
    this.length = 0;
    return this;
  }
}

export class ByteReader {
  private offset = 0;
  /** Made on the first f64: a DataView costs more than most side values take to read. */
  private view: DataView | undefined;

  constructor(private readonly buffer: Uint8Array) {}

  /** Bytes read so far. */
  get consumed(): number {
    return this.offset;
  }

  u8(): number {
    if (this.offset >= this.buffer.length) throw new RangeError("tile state is truncated");
    return this.buffer[this.offset++]!;
  }

  varuint(): number {
    let value = 0;
    let scale = 1;
    for (;;) {
      const byte = this.u8();
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 0x80;
    }
  }

  varint(): number {
    const z = this.varuint();
    return z % 2 === 1 ? -(z + 1) / 2 : z / 2;
  }

  f64(): number {
    if (this.offset + 8 > this.buffer.length) throw new RangeError("tile state is truncated");
    const { buffer } = this;
    this.view ??= new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    const value = this.view.getFloat64(this.offset, true);
    this.offset += 8;
    return value;
  }

  bytes(): Uint8Array {
    const length = this.varuint();
    if (this.offset + length > this.buffer.length) throw new RangeError("tile state is truncated");
    const out = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }

  string(): string {
    return decoder.decode(this.bytes());
  }

  value(): unknown {
    const tag = this.u8();
    switch (tag) {
      case 0:
        return null;
      case 1:
        return this.f64();
      case 2:
        return this.string();
      case 3:
        return true;
      case 4:
        return false;
      case 5:
        return JSON.parse(this.string());
      default:
        throw new RangeError(`unknown value tag ${tag} in tile state`);
    }
  }

  get done(): boolean {
    return this.offset === this.buffer.length;
  }
}

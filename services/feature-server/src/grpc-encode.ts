/**
 * GetOnlineFeaturesResponse.results (field 1) written as protobuf bytes by hand. The proto keeps a
 * `map<string, FeatureResult>` per entity, so a 100-entity answer of 9 features encodes 900 map
 * entries; protobufjs builds an object per value and re-encodes every feature name each time. Here
 * a group's names are encoded once and each entry is written straight into one buffer.
 *
 * Protobuf lets a message's fields come in any order and a repeated field in several runs, so these
 * bytes followed by protobufjs' encoding of the other fields are the whole response
 * (test/grpc-encode.test.ts decodes both ways and compares).
 */
import type { FeatureValue } from "@tessera/transforms";
import type { FeatureResponse, Status } from "./serve.js";

/** FeatureStatus numbers in schemas/proto/feature_service.proto. */
const STATUS_NUMBER: Record<Status, number> = { present: 1, missing: 2, stale: 3, error: 4, quarantined: 5 };

const varintSize = (n: number) => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5);
/** A length-delimited field of `size` bytes behind a one-byte tag. */
const fieldSize = (size: number) => 1 + varintSize(size) + size;

/** Writes n as a varint at `at`; returns the position after it. */
function putVarint(buffer: Buffer, at: number, n: number): number {
  while (n >= 0x80) {
    buffer[at++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buffer[at++] = n;
  return at;
}

class Writer {
  buffer = Buffer.allocUnsafe(64 * 1024);
  at = 0;

  reserve(n: number): void {
    if (this.at + n <= this.buffer.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.at + n));
    this.buffer.copy(next, 0, 0, this.at);
    this.buffer = next;
  }

  varint(n: number): void {
    this.reserve(5);
    this.at = putVarint(this.buffer, this.at, n);
  }

  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buffer.set(b, this.at);
    this.at += b.length;
  }

  /** Tag, length and UTF-8 of a string field. */
  string(tag: number, text: string, size = Buffer.byteLength(text)): void {
    this.varint(tag);
    this.varint(size);
    this.reserve(size);
    this.at += this.buffer.write(text, this.at, "utf8");
  }

  double(tag: number, n: number): void {
    this.varint(tag);
    this.reserve(8);
    this.buffer.writeDoubleLE(n, this.at);
    this.at += 8;
  }
}

const writer = new Writer();

/** Bytes of a Value message (without its own tag and length). */
function valueSize(v: FeatureValue): number {
  if (typeof v === "number") return 9;
  if (typeof v === "boolean") return 2;
  if (typeof v === "string") return fieldSize(Buffer.byteLength(v));
  if (Array.isArray(v)) return fieldSize(listSize(v));
  return 0; // null: no oneof set
}

/** Bytes of a ValueList message: each item a Value field. */
function listSize(items: unknown[]): number {
  let size = 0;
  for (const item of items) size += fieldSize(valueSize(item as FeatureValue));
  return size;
}

/** Bytes of a FeatureResult holding a Value of `value` bytes: the value field and the status field. */
const resultSize = (value: number) => fieldSize(value) + 2;

function writeValue(w: Writer, v: FeatureValue): void {
  if (typeof v === "number") w.double(0x09, v);
  else if (typeof v === "boolean") {
    w.varint(0x18);
    w.varint(v ? 1 : 0);
  } else if (typeof v === "string") w.string(0x12, v);
  else if (Array.isArray(v)) {
    w.varint(0x22);
    w.varint(listSize(v));
    for (const item of v) {
      w.varint(0x0a);
      w.varint(valueSize(item as FeatureValue));
      writeValue(w, item as FeatureValue);
    }
  }
}

/** A map entry's key field (tag 1, the feature name), encoded once per group. */
function keyField(name: string): Buffer {
  const size = Buffer.byteLength(name);
  const out = Buffer.allocUnsafe(fieldSize(size));
  out[0] = 0x0a;
  out.write(name, putVarint(out, 1, size), "utf8");
  return out;
}

/** Field 1 of GetOnlineFeaturesResponse: one EntityResult per entity of every group, in order. */
export function entityResultsBytes(response: FeatureResponse): Buffer {
  const w = writer;
  w.at = 0;
  for (const [entityKey, group] of Object.entries(response.entities)) {
    const keys = group.features.map(keyField);
    const keySize = Buffer.byteLength(entityKey);
    for (const row of group.results) {
      const idSize = Buffer.byteLength(row.id);
      // Sizes first: each message's length precedes it.
      let features = 0;
      const valueSizes = row.values.map((v) => valueSize(v));
      for (let c = 0; c < keys.length; c++)
        features += fieldSize(keys[c]!.length + fieldSize(resultSize(valueSizes[c]!)));
      const entity = fieldSize(keySize) + fieldSize(idSize) + features;
      w.varint(0x0a);
      w.varint(entity);
      w.string(0x0a, entityKey, keySize);
      w.string(0x12, row.id, idSize);
      for (let c = 0; c < keys.length; c++) {
        const value = valueSizes[c]!;
        const result = resultSize(value);
        const key = keys[c]!;
        w.varint(0x1a);
        w.varint(key.length + fieldSize(result));
        w.bytes(key);
        w.varint(0x12);
        w.varint(result);
        w.varint(0x0a);
        w.varint(value);
        writeValue(w, row.values[c]!);
        w.varint(0x10);
        w.varint(STATUS_NUMBER[row.statuses[c]!]);
      }
    }
  }
  return w.buffer.subarray(0, w.at); // a view: valid until the next call (the serialiser copies it at once)
}

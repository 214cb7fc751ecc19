/**
 * Confluent-framed Avro (magic byte 0, 4-byte schema id, Avro body) → JS values: the one decoder of
 * the processor, the drift worker and the archiver. Each writer schema is fetched once per id and
 * parsed into an avsc Type, so decoding a record is one synchronous `fromBuffer`. The registry
 * client's generic deserializer re-keys its caches by the schema's JSON on every message (≈ 250 µs
 * each, measured in bench/drift-worker): about 10× what this costs.
 *
 * Schema references are resolved (each referenced subject/version parsed into the same avsc
 * registry of named types), so a writer with references decodes like any other.
 */
import type avro from "avsc";
import type { SchemaRegistry } from "./serde.js";
import { schemaIdOf } from "./serde.js";
import { parseAvroTypes } from "./validate.js";

/** A writer schema the decoder can use. */
export interface WriterSchema {
  id: number;
  /** The schema as registered (JSON text). */
  text: string;
  type: avro.Type;
}

/** Why a record cannot be decoded: the dead-letter reason and its detail. */
export interface Undecodable {
  reason: "decode_error" | "unknown_schema" | "schema_mismatch";
  detail: string;
}

export type DecodedRecord =
  | { ok: true; value: unknown; writer: WriterSchema }
  | ({ ok: false } & Undecodable);

/** A registry failure other than "no such schema": retried by the caller, never dead-lettered. */
export class RegistryUnavailableError extends Error {
  override name = "RegistryUnavailableError";
  readonly retriable = true;
}

export class AvroDecoder {
  private readonly writers = new Map<number, WriterSchema | Undecodable>();

  constructor(private readonly registry: SchemaRegistry) {}

  /**
   * Fetches the writer schemas of these payloads not seen yet (one request per new id). Throws
   * RegistryUnavailableError while the registry is away; nothing is cached then.
   */
  async prepare(payloads: Iterable<Buffer | null | undefined>): Promise<void> {
    const missing = new Set<number>();
    for (const payload of payloads) {
      const id = schemaIdOf(payload);
      if (id !== undefined && !this.writers.has(id)) missing.add(id);
    }
    for (const id of missing) this.writers.set(id, await this.fetch(id));
  }

  /** The writer schema of a prepared id (or why there is none). */
  writer(id: number): WriterSchema | Undecodable | undefined {
    return this.writers.get(id);
  }

  /** Decodes one record whose schema id prepare() has seen. */
  decodePrepared(payload: Buffer | null | undefined): DecodedRecord {
    const id = schemaIdOf(payload);
    if (id === undefined || !payload) {
      return {
        ok: false,
        reason: "decode_error",
        detail: payload
          ? "not Confluent-framed (no magic byte 0 and 4-byte schema id)"
          : "null value (tombstone)",
      };
    }
    const writer = this.writers.get(id);
    if (!writer) throw new Error(`schema ${id} was not prepared`);
    if ("reason" in writer) return { ok: false, ...writer };
    try {
      return { ok: true, value: writer.type.fromBuffer(payload.subarray(5)), writer };
    } catch (error) {
      return { ok: false, reason: "decode_error", detail: `schema ${id}: ${(error as Error).message}` };
    }
  }

  /** prepare() and decodePrepared() for one record. */
  async decode(payload: Buffer | null | undefined): Promise<DecodedRecord> {
    await this.prepare([payload]);
    return this.decodePrepared(payload);
  }

  private async fetch(id: number): Promise<WriterSchema | Undecodable> {
    try {
      // Ids are global in the registry: no subject needed.
      const info = await this.registry.client.getBySubjectAndId("", id);
      if (info.schemaType !== undefined && info.schemaType !== "AVRO") {
        return { reason: "schema_mismatch", detail: `schema ${id} is ${info.schemaType}, not Avro` };
      }
      const referenced: string[] = [];
      for (const ref of info.references ?? []) {
        const meta = await this.registry.client.getSchemaMetadata(ref.subject, ref.version, false);
        referenced.push(meta.schema!);
      }
      try {
        return { id, text: info.schema, type: parseAvroTypes(referenced, info.schema) };
      } catch (error) {
        return {
          reason: "schema_mismatch",
          detail: `schema ${id} does not parse: ${(error as Error).message}`,
        };
      }
    } catch (error) {
      if ((error as { status?: number }).status === 404) {
        return { reason: "unknown_schema", detail: `schema id ${id} is not in the registry` };
      }
      throw new RegistryUnavailableError(
        `schema registry: reading schema ${id}: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
  }
}

/**
 * Confluent wire format (magic byte 0, 4-byte schema id, payload) through @confluentinc/schemaregistry,
 * so any Confluent-compatible client can read what Tessera writes and the other way round.
 */
import {
  AvroDeserializer,
  AvroSerializer,
  type Client,
  JsonDeserializer,
  JsonSerializer,
  MockClient,
  SchemaRegistryClient,
  SerdeType,
} from "@confluentinc/schemaregistry";
import { SchemaNotFoundError, SchemaRegistryError } from "./errors.js";

export type SchemaType = "AVRO" | "JSON";

export interface RegisteredSchema {
  id: number;
  version?: number;
  schema: string;
  type: SchemaType;
}

export function registryUrlFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const url = env["SCHEMA_REGISTRY_URL"];
  if (!url) throw new Error("SCHEMA_REGISTRY_URL is not set (`npm run stack:up` writes .tessera/stack.env)");
  return url;
}

/** Subject naming: Confluent's TopicNameStrategy. */
export const valueSubject = (topic: string) => `${topic}-value`;

function status(error: unknown): number | undefined {
  return (error as { status?: number }).status;
}

export class SchemaRegistry {
  readonly client: Client;

  constructor(
    readonly url: string = registryUrlFromEnv(),
    client?: Client,
  ) {
    this.client =
      client ??
      new SchemaRegistryClient({
        baseURLs: [url],
        maxRetries: 2,
        retriesWaitMs: 200,
        retriesMaxWaitMs: 1000,
        createAxiosDefaults: { timeout: 5000 },
      });
  }

  /** A registry that lives in this process: for the embedded demo and unit tests. */
  static inMemory(): SchemaRegistry {
    return new SchemaRegistry(
      "memory://schema-registry",
      new MockClient({ baseURLs: ["memory://schema-registry"] }),
    );
  }

  async register(subject: string, schema: string | object, type: SchemaType = "AVRO"): Promise<number> {
    const text = typeof schema === "string" ? schema : JSON.stringify(schema);
    try {
      return await this.client.register(subject, { schema: text, schemaType: type }, false);
    } catch (error) {
      const hint = status(error) === 409 ? " (incompatible with the registered versions)" : "";
      throw new SchemaRegistryError(
        `registering ${subject} at ${this.url} failed${hint}: ${(error as Error).message}`,
        {
          retriable: status(error) === undefined || (status(error) ?? 0) >= 500,
          cause: error,
        },
      );
    }
  }

  async latest(subject: string): Promise<RegisteredSchema> {
    try {
      const meta = await this.client.getLatestSchemaMetadata(subject);
      return {
        id: meta.id!,
        version: meta.version,
        schema: meta.schema!,
        type: (meta.schemaType as SchemaType | undefined) ?? "AVRO",
      };
    } catch (error) {
      if (status(error) === 404) throw new SchemaNotFoundError(subject);
      throw new SchemaRegistryError(
        `reading ${subject} from ${this.url} failed: ${(error as Error).message}`,
        {
          retriable: true,
          cause: error,
        },
      );
    }
  }

  /** A serializer pinned to one schema id: what was validated is exactly what gets written. */
  serializer(schema: RegisteredSchema): AvroSerializer | JsonSerializer {
    const conf = { autoRegisterSchemas: false, useSchemaId: schema.id };
    return schema.type === "JSON"
      ? new JsonSerializer(this.client, SerdeType.VALUE, { ...conf, validate: true })
      : new AvroSerializer(this.client, SerdeType.VALUE, conf);
  }

  avroDeserializer(): AvroDeserializer {
    return new AvroDeserializer(this.client, SerdeType.VALUE, {});
  }

  jsonDeserializer(): JsonDeserializer {
    return new JsonDeserializer(this.client, SerdeType.VALUE, { validate: true });
  }

  close(): void {
    this.client.close();
  }
}

/** The schema id in a Confluent-framed payload, or undefined when it is not framed. */
export function schemaIdOf(payload: Buffer | null | undefined): number | undefined {
  if (!payload || payload.length < 5 || payload[0] !== 0) return undefined;
  return payload.readInt32BE(1);
}

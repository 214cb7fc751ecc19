import { tesseraTopics } from "@tessera/kafka";
import type { JsonSchema } from "@tessera/runtime";

export interface ArchiverConfig {
  /** Source topics to archive. */
  topics: string[];
  /** Root of the archive: one directory per topic below it. */
  root: string;
  groupId: string;
  /** Field of the event holding its event time (epoch ms or ISO-8601): picks the date/hour directory. */
  timestampField: string;
  roll: {
    /** Close a partition's file once this many records are buffered. */
    maxRecords: number;
    /** … or once the buffered Avro payloads reach this many bytes. */
    maxBytes: number;
    /** … or once the oldest buffered record has waited this long. */
    maxAgeMs: number;
  };
  deadLetterTopic: string;
  /** Kafka group session timeout: how soon a dead member's partitions move to another. */
  sessionTimeoutMs: number;
  ops: { host: string; port: number };
}

export const configSchema: JsonSchema = {
  type: "object",
  additionalProperties: false,
  required: ["topics"],
  properties: {
    topics: { type: "array", items: { type: "string", minLength: 1 }, minItems: 1 },
    root: { type: "string", minLength: 1, default: "./archive" },
    groupId: { type: "string", minLength: 1, default: "tessera-archiver" },
    timestampField: { type: "string", minLength: 1, default: "event_time" },
    roll: {
      type: "object",
      additionalProperties: false,
      default: {},
      properties: {
        maxRecords: { type: "integer", minimum: 1, default: 100_000 },
        maxBytes: { type: "integer", minimum: 1, default: 64 * 1024 * 1024 },
        maxAgeMs: { type: "integer", minimum: 10, default: 60_000 },
      },
    },
    deadLetterTopic: { type: "string", minLength: 1, default: tesseraTopics.deadLetter },
    sessionTimeoutMs: { type: "integer", minimum: 1000, default: 30_000 },
    ops: {
      type: "object",
      additionalProperties: false,
      default: {},
      properties: {
        host: { type: "string", default: "127.0.0.1" },
        port: { type: "integer", minimum: 0, maximum: 65535, default: 9102 },
      },
    },
  },
};

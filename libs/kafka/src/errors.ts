/**
 * Error classes callers can act on. `retriable` tells a loop whether waiting and trying again can
 * help (broker away, leader moving) or not (bad event, missing topic, incompatible schema).
 */
export class TesseraKafkaError extends Error {
  readonly retriable: boolean;
  constructor(message: string, options: { retriable?: boolean; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.retriable = options.retriable ?? false;
  }
}

/** An event does not match its schema. Nothing was sent. */
export class SchemaValidationError extends TesseraKafkaError {
  constructor(
    readonly topic: string,
    /** Each problem as `path: reason`, e.g. `amount: expected double, got "12,5"`. */
    readonly problems: string[],
  ) {
    super(`event for ${topic} does not match its schema: ${problems.join("; ")}`);
  }
}

export class UnknownTopicError extends TesseraKafkaError {
  constructor(readonly topic: string) {
    super(`topic "${topic}" does not exist; create it first (ensureTopics, or \`tessera topics create\`)`);
  }
}

/** No schema to validate against: not registered and none given to the producer. */
export class SchemaNotFoundError extends TesseraKafkaError {
  constructor(readonly subject: string) {
    super(
      `no schema registered under subject "${subject}"; register one (\`tessera schemas push\`) or pass it to the producer`,
    );
  }
}

export class SchemaRegistryError extends TesseraKafkaError {}

export class BrokerUnavailableError extends TesseraKafkaError {
  constructor(brokers: string[], cause: unknown) {
    super(`Kafka at ${brokers.join(",")} is not reachable: ${(cause as Error)?.message ?? cause}`, {
      retriable: true,
      cause,
    });
  }
}

/** KafkaJS marks its own errors with `retriable`; anything else is treated as not retriable. */
export function isRetriable(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { retriable?: unknown }).retriable === true;
}

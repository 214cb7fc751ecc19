/**
 * The default name of every topic Tessera writes or reads besides the users' own sources: configs
 * default to these, and schemas/topics.json maps each to its Avro schema (a test keeps them equal).
 */
export const tesseraTopics = {
  /** FeatureUpdate records, after each processor flush (drift workers read them). */
  features: "tessera.features",
  /** Model predictions and labels joined by the drift worker for accuracy. */
  predictions: "tessera.predictions",
  labels: "tessera.labels",
  /** DriftAlert records. */
  alerts: "tessera.alerts",
  /** Records no service could use, byte for byte with the reason. */
  deadLetter: "tessera.dead-letter",
  /** Vectors the feature server served (sampled), for `tessera consistency`. */
  servedFeatures: "tessera.served-features",
} as const;

export type TesseraTopic = keyof typeof tesseraTopics;

/**
 * Compacted topics of JSON state (the latest value per key): Tessera's own format, so no registered
 * schema and not in schemas/topics.json. Whoever uses one creates it, compacted, at start.
 */
export const tesseraStateTopics = {
  /** Open incidents, windows and input positions of the drift worker. */
  driftWorker: "tessera.drift-worker.state",
  /** Quality gates per view and model (gate-topic.ts). */
  gate: "tessera.gate",
} as const;

export { type EnsureTopicsResult, ensureTopics, type TopicSpec } from "./admin.js";
export {
  AvroDecoder,
  type DecodedRecord,
  RegistryUnavailableError,
  type Undecodable,
  type WriterSchema,
} from "./avro-decoder.js";
export type {
  Assignment,
  BatchPayload,
  Bus,
  BusAdmin,
  BusBatch,
  BusConsumer,
  BusHeaders,
  BusProducer,
  BusRecord,
  ConsumerSettings,
  MessagePayload,
  OutgoingRecord,
  ProduceRequest,
  ProducerSettings,
  RunOptions,
  SentRecords,
  TopicPartitionOffset,
} from "./bus.js";
export {
  type BatchContext,
  ConsumerLoop,
  type ConsumerLoopOptions,
  type RetryPolicy,
} from "./consumer-loop.js";
export {
  type DeadLetter,
  DeadLetterPublisher,
  deadLetterOf,
  deadLetterSchema,
  defaultDeadLetterTopic,
} from "./dead-letter.js";
export {
  BrokerUnavailableError,
  isRetriable,
  SchemaNotFoundError,
  SchemaRegistryError,
  SchemaValidationError,
  TesseraKafkaError,
  UnknownTopicError,
} from "./errors.js";
export {
  DEFAULT_GATE_TOPIC,
  ensureGateTopic,
  GateFollower,
  type GateFollowerOptions,
  GatePublisher,
  type GatePublisherOptions,
} from "./gate-topic.js";
export { brokersFromEnv, createKafka, type KafkaOptions } from "./kafkajs-bus.js";
export { MemoryBroker } from "./memory.js";
export { type KafkaMetrics, kafkaMetrics } from "./metrics.js";
export { murmur2, partitionForKey } from "./partitioner.js";
export { type ProducerOptions, type PublishOptions, TesseraProducer } from "./producer.js";
export {
  type RegisteredSchema,
  registryUrlFromEnv,
  SchemaRegistry,
  type SchemaType,
  schemaIdOf,
  valueSubject,
} from "./serde.js";
export { type TesseraTopic, tesseraStateTopics, tesseraTopics } from "./topics.js";
export { avroProblems, parseAvroSchema, parseAvroTypes } from "./validate.js";
export type {
  AlertKind,
  AlertStatus,
  DeadLetterRecord,
  DriftAlertRecord,
  FeatureUpdateRecord,
  LabelRecord,
  PaymentTransactionRecord,
  PredictionRecord,
  ServedFeaturesRecord,
  Severity,
} from "./wire.js";

export type { DeadReason } from "./codec.js";
export {
  ConfigError,
  configSchema,
  ENV_PREFIX,
  loadProcessorConfig,
  type ProcessorConfig,
  storeConfig,
} from "./config.js";
export { selectViews } from "./definitions.js";
export { type Processor, type ProcessorDeps, startProcessor } from "./processor.js";

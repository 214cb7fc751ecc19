export { ConfigError, envName, type JsonSchema, type LoadConfigOptions, loadConfig } from "./config.js";
export {
  DefinitionsLoadError,
  type DefinitionsProblem,
  definitionsFileTypes,
  loadDefinitions,
} from "./definitions.js";
export { createLogger, type Logger, onShutdown } from "./lifecycle.js";
export { type OpsOptions, type OpsServer, opsRoutes, type Readiness, startOpsServer } from "./ops.js";
export { bool, deepMerge, envList, int, num, obj, str, strings } from "./schema.js";
export {
  extractTraceContext,
  injectTraceHeaders,
  type MessageHeaders,
  type SetupTracingOptions,
  setupTracing,
  spanContextFromHeaders,
  type Tracing,
  type TracingConfig,
  traceHeadersOf,
  tracingConfigSchema,
  tracingEnabled,
} from "./tracing.js";

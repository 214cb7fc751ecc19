/**
 * Process entry: `node services/stream-processor/dist/main.js --config <file>` (settings also from
 * TESSERA_PROCESSOR_* variables). Exits 2 on a bad configuration or definitions, 1 on a fatal error; SIGTERM and
 * SIGINT flush the batch in hand and leave the consumer group first.
 */
import { parseArgs } from "node:util";
import { createLogger, DefinitionsLoadError, onShutdown, setupTracing } from "@tessera/runtime";
import { ConfigError, loadProcessorConfig, type ProcessorConfig } from "./config.js";
import { type Processor, startProcessor } from "./processor.js";

const logger = createLogger("stream-processor");

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: "string", short: "c" } } });
  let config: ProcessorConfig;
  try {
    config = loadProcessorConfig({ file: values.config });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`stream-processor: ${error.message}`);
    process.exit(2);
  }
  // Registered before the start: a SIGTERM while connecting simply ends the process (nothing to flush).
  let processor: Processor | undefined;
  // Before the processor starts: it decides once whether its flushes are traced.
  const tracing = await setupTracing(config.tracing, { serviceName: "tessera-stream-processor" });
  onShutdown(async () => processor?.stop().finally(() => tracing.shutdown()), { logger });
  processor = await startProcessor(config, { logger }).catch((error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    console.error(`stream-processor: cannot start: ${message}`);
    process.exit(error instanceof DefinitionsLoadError ? 2 : 1);
  });
  logger.info({ ops: processor.opsUrl, groupId: processor.groupId }, "ready to consume");
  processor.done.catch((error: unknown) => {
    logger.fatal({ err: error }, "stopped on a fatal error");
    process.exit(1);
  });
}

void main();

/**
 * The drift worker process: `node services/drift-worker/dist/main.js [--config <file>]`.
 * Settings from the file and TESSERA_DRIFT_WORKER_* (see config.ts); Kafka and the registry from
 * KAFKA_BROKERS and SCHEMA_REGISTRY_URL.
 */
import { parseArgs } from "node:util";
import { ConfigError, createLogger, loadConfig, onShutdown, setupTracing } from "@tessera/runtime";
import { configSchema, type DriftWorkerConfig, ENV_PREFIX } from "./config.js";
import { startDriftWorker } from "./index.js";

const logger = createLogger("drift-worker");

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: "string" } } });
  const config = loadConfig<DriftWorkerConfig>({
    schema: configSchema,
    envPrefix: ENV_PREFIX,
    file: values.config,
  });
  const tracing = await setupTracing(config.tracing, { serviceName: "tessera-drift-worker" });
  const worker = await startDriftWorker(config, { logger });
  logger.info(
    { url: worker.url, topics: config.topics, reference: config.reference.path },
    "drift worker started",
  );
  onShutdown(() => worker.stop().finally(() => tracing.shutdown()), { logger });
  // Without its consumer the worker watches nothing: exit so the orchestrator restarts it.
  worker.done.catch(async (error) => {
    logger.fatal({ err: error }, "consumer stopped on a fatal error: exiting");
    await worker.stop().catch(() => {});
    process.exit(1);
  });
}

main().catch((error) => {
  if (error instanceof ConfigError) process.stderr.write(`drift-worker: ${error.message}\n`);
  else logger.error({ err: error }, "drift worker failed to start");
  process.exit(error instanceof ConfigError ? 2 : 1);
});

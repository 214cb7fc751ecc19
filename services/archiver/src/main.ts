/**
 * Process entry: `node services/archiver/dist/main.js [--config archiver.yaml]`.
 * Settings from the file and TESSERA_ARCHIVER_* (e.g. TESSERA_ARCHIVER_TOPICS=payments.transactions);
 * Kafka and the registry from KAFKA_BROKERS and SCHEMA_REGISTRY_URL.
 */
import { ConfigError, createLogger, loadConfig, onShutdown } from "@tessera/runtime";
import { startArchiver } from "./archiver.js";
import { type ArchiverConfig, configSchema } from "./config.js";

const logger = createLogger("archiver");
const args = process.argv.slice(2);
const at = args.indexOf("--config");
const file = at >= 0 ? args[at + 1] : undefined;

try {
  const config = loadConfig<ArchiverConfig>({
    schema: configSchema,
    envPrefix: "TESSERA_ARCHIVER",
    ...(file ? { file } : {}),
  });
  const archiver = await startArchiver(config, { logger });
  onShutdown(() => archiver.stop(), { logger });
  archiver.done.catch((error) => {
    logger.fatal({ err: error }, "archiver stopped on a fatal error; a restart replays from the last commit");
    process.exit(1);
  });
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(2);
  }
  logger.fatal({ err: error }, "archiver failed to start");
  process.exit(1);
}

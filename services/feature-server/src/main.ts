/**
 * Process entry: `node services/feature-server/dist/main.js --config <file>` (settings also from
 * TESSERA_FEATURE_SERVER_* variables). `--hash-key <key>` prints the sha256 to put in a keys file.
 * Exits 2 on a bad configuration or definitions (unreadable or invalid, or a store that refuses
 * them), 1 when it cannot listen; a store that does not answer yet is retried with backoff while
 * /readyz says not ready. SIGTERM/SIGINT drain in-flight requests before exiting.
 */
import { parseArgs } from "node:util";
import { ConfigError, createLogger, DefinitionsLoadError, onShutdown, setupTracing } from "@tessera/runtime";
import { type FeatureServerConfig, hashKey, loadFeatureServerConfig, startFeatureServer } from "./index.js";

const logger = createLogger("feature-server");

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { config: { type: "string", short: "c" }, "hash-key": { type: "string" } },
  });
  if (values["hash-key"] !== undefined) {
    console.log(hashKey(values["hash-key"]));
    return;
  }
  let config: FeatureServerConfig;
  try {
    config = loadFeatureServerConfig({ file: values.config });
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`feature-server: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
  const cannotStart = (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    console.error(`feature-server: cannot start: ${message}`);
    process.exit(error instanceof DefinitionsLoadError || error instanceof ConfigError ? 2 : 1);
  };
  // Before the server starts: its request hooks are installed only when tracing is on.
  const tracing = await setupTracing(config.tracing, { serviceName: "tessera-feature-server" });
  // Listens at once and retries the store in the background (not ready meanwhile): a slow store at
  // start is not a reason to exit, only a configuration error is.
  const server = await startFeatureServer(config, { logger, waitForStore: false }).catch(cannotStart);
  onShutdown(() => server.stop().finally(() => tracing.shutdown()), {
    logger,
    timeoutMs: config.reliability.drainTimeoutMs + 5000,
  });
  server.storeReady.catch(async (error: unknown) => {
    await server.stop().catch(() => {});
    cannotStart(error);
  });
}

void main();

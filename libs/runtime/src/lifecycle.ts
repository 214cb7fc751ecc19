import { type Logger, pino } from "pino";

/** JSON lines on stdout, one logger per service; TESSERA_LOG_LEVEL overrides the level. */
export function createLogger(service: string, level = process.env["TESSERA_LOG_LEVEL"] ?? "info"): Logger {
  return pino({ name: service, level, base: { service } });
}

export type { Logger } from "pino";

/**
 * Run `stop` once on SIGTERM or SIGINT, then exit. A second signal, or `stop` taking longer than
 * the timeout, exits at once: an operator's second Ctrl-C must always work.
 */
export function onShutdown(
  stop: (signal: NodeJS.Signals) => Promise<void>,
  options: { timeoutMs?: number; logger?: Logger } = {},
): () => void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      options.logger?.warn({ signal }, "second signal: exiting now");
      process.exit(130);
    }
    stopping = true;
    options.logger?.info({ signal }, "shutting down");
    const timer = setTimeout(() => {
      options.logger?.error({ timeoutMs: options.timeoutMs ?? 30_000 }, "shutdown timed out: exiting");
      process.exit(1);
    }, options.timeoutMs ?? 30_000);
    timer.unref();
    stop(signal).then(
      () => process.exit(0),
      (error) => {
        options.logger?.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", handler);
  process.on("SIGINT", handler);
  return () => {
    process.off("SIGTERM", handler);
    process.off("SIGINT", handler);
  };
}

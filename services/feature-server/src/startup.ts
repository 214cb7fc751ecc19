/**
 * Start-up against a store that may not answer yet (Redis still loading, a slow first connection,
 * a rolling restart of the store): the views are applied with exponential backoff while the server
 * already listens and reports not-ready. Only a store that refuses outright (a non-retriable error,
 * e.g. a wrong password or a keyspace it may not create) stops the server: that is configuration.
 */
import { ConfigError, type Logger } from "@tessera/runtime";
import { type OnlineStore, OnlineStoreError, type OnlineView } from "@tessera/stores";

export interface StartOptions {
  initialMs?: number;
  maxMs: number;
  signal: AbortSignal;
  logger: Logger;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", done);
      resolve();
    }, ms);
    signal.addEventListener("abort", done, { once: true });
  });

/** Resolves once every view is applied; rejects with a ConfigError when the store refuses. */
export async function applyViews(
  store: OnlineStore,
  views: readonly OnlineView[],
  options: StartOptions,
): Promise<void> {
  const initial = options.initialMs ?? 100;
  for (let attempt = 0; ; attempt++) {
    try {
      for (const view of views) await store.applyView(view);
      if (attempt > 0) options.logger.info({ attempts: attempt + 1 }, "online store answered");
      return;
    } catch (error) {
      if (!(error instanceof OnlineStoreError) || !error.retriable) {
        throw new ConfigError([`store: refused at start-up: ${(error as Error).message}`]);
      }
      if (options.signal.aborted) throw error;
      const delay = Math.min(options.maxMs, initial * 2 ** attempt) * (0.8 + Math.random() * 0.4);
      options.logger.warn(
        { err: error, attempt: attempt + 1, retryInMs: Math.round(delay) },
        "online store not reachable yet: not ready, retrying",
      );
      await sleep(delay, options.signal);
    }
  }
}

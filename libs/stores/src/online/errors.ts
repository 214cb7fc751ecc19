export type OnlineBackend = "redis" | "redis-cluster" | "cassandra" | "memory";

/** Base of every error an online store throws. `retriable` tells the caller whether to try again. */
export class OnlineStoreError extends Error {
  readonly backend: OnlineBackend;
  readonly retriable: boolean;

  constructor(backend: OnlineBackend, message: string, retriable: boolean, options?: { cause?: unknown }) {
    super(`${backend} online store: ${message}`, options);
    this.name = "OnlineStoreError";
    this.backend = backend;
    this.retriable = retriable;
  }
}

/** The store cannot answer now (connection lost, timeout, overload, closed): retriable; a server maps it to 503. */
export class StoreUnavailableError extends OnlineStoreError {
  constructor(backend: OnlineBackend, message: string, options?: { cause?: unknown }) {
    super(backend, message, true, options);
    this.name = "StoreUnavailableError";
  }
}

/** The request itself is wrong (bad input, view not applied, refused by the backend): retrying will not help. */
export class StoreRequestError extends OnlineStoreError {
  constructor(backend: OnlineBackend, message: string, options?: { cause?: unknown }) {
    super(backend, message, false, options);
    this.name = "StoreRequestError";
  }
}

/**
 * The writer no longer owns the partition as the store sees it ("epoch": another owner claimed it
 * since) or the store does not hold the offset the writer last wrote ("offset": writes were lost,
 * e.g. a Redis failover). Nothing of the batch that the newer owner wrote was overwritten; the writer
 * must drop its in-memory state and claim the partition again before writing.
 */
export class StoreFencedError extends OnlineStoreError {
  readonly reason: "epoch" | "offset";
  constructor(backend: OnlineBackend, reason: "epoch" | "offset", message: string) {
    super(backend, message, false);
    this.name = "StoreFencedError";
    this.reason = reason;
  }
}

/** Settles with `promise`, or rejects with `StoreUnavailableError` after `ms`: a dead store never hangs a caller. */
export function withTimeout<T>(
  backend: OnlineBackend,
  what: string,
  ms: number,
  promise: Promise<T>,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new StoreUnavailableError(backend, `${what} timed out after ${ms} ms`)),
      ms,
    );
  });
  // The losing promise may still reject later; that must not become an unhandled rejection.
  promise.catch(() => {});
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

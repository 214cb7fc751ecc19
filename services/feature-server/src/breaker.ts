import { StoreUnavailableError } from "@tessera/stores";
import { ServeError } from "./errors.js";

/**
 * What counts toward the breaker: the store being down or too slow, nothing else. A request error
 * never does, even one a store wraps as "unavailable": an exception our own code raised on the
 * request's input (TypeError, RangeError, URIError, SyntaxError) before anything reached the store
 * is that request's fault, and must not let one caller open the circuit for every other.
 */
export function isStoreOutage(error: unknown): boolean {
  if (error instanceof ServeError) return error.kind === "unavailable";
  if (!(error instanceof StoreUnavailableError)) return false;
  const cause = error.cause;
  return !(
    cause instanceof TypeError ||
    cause instanceof RangeError ||
    cause instanceof URIError ||
    cause instanceof SyntaxError
  );
}

/**
 * A circuit breaker around the online store. After `failures` consecutive unavailable errors it
 * opens: calls fail at once (no pile-up of requests waiting on a dead store) for `cooldownMs`. Then
 * one trial call goes through (half-open): success closes the circuit, failure opens it again.
 */
export class CircuitBreaker {
  private consecutive = 0;
  private openUntil = 0;
  private trial = false;

  constructor(
    private readonly failures: number,
    private readonly cooldownMs: number,
    private readonly isFailure: (error: unknown) => boolean,
    private readonly onChange: (open: boolean) => void = () => {},
  ) {}

  get open(): boolean {
    return this.openUntil > 0;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    let isTrial = false;
    if (this.openUntil > 0) {
      const wait = this.openUntil - Date.now();
      if (wait > 0 || this.trial) {
        throw new ServeError(
          "unavailable",
          "online store circuit is open after repeated failures",
          undefined,
          Math.max(1, Math.ceil(wait / 1000)),
        );
      }
      this.trial = isTrial = true;
    }
    try {
      const result = await fn();
      if (this.openUntil > 0) this.onChange(false);
      this.consecutive = 0;
      this.openUntil = 0;
      return result;
    } catch (error) {
      if (this.isFailure(error)) {
        this.consecutive++;
        if (isTrial || this.consecutive >= this.failures) {
          if (this.openUntil === 0) this.onChange(true);
          this.openUntil = Date.now() + this.cooldownMs;
        }
      }
      throw error;
    } finally {
      if (isTrial) this.trial = false;
    }
  }
}

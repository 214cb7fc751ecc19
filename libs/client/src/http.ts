/**
 * HTTP/JSON transport: POST /v1/features over an undici connection pool with keep-alive, so a
 * call reuses a warm connection (and a hedged attempt takes another one).
 */
import { Pool } from "undici";
import {
  type ErrorCode,
  TesseraClientError,
  type Transport,
  type WireRequest,
  type WireResponse,
} from "./types.js";

export interface HttpTransportOptions {
  /** Base URL, e.g. http://127.0.0.1:8080 (https:// for TLS). */
  url: string;
  /** Connections kept per server (default 16). */
  connections?: number;
  /** How long an idle connection stays open (default 30 s). */
  keepAliveMs?: number;
  /** CA certificate(s) for https:// with a private CA. */
  ca?: string | Buffer;
}

const CODE_OF_STATUS: Record<number, ErrorCode> = {
  400: "invalid",
  401: "unauthenticated",
  403: "forbidden",
  413: "invalid",
  415: "invalid",
  429: "limited",
  503: "unavailable",
};

/** Errors of a connection that failed or closed before an answer: the server is away, try again. */
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_CLOSED",
]);

/** Retry-After as ms: delta-seconds or an HTTP date. */
export function retryAfterMs(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.trim() === "") return undefined;
  if (/^\d+$/.test(text.trim())) return Number(text.trim()) * 1000;
  const at = Date.parse(text);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

export class HttpTransport implements Transport {
  private readonly pool: Pool;
  private readonly origin: string;
  private readonly basePath: string;

  constructor(options: HttpTransportOptions) {
    const url = new URL(options.url);
    if (url.protocol !== "http:" && url.protocol !== "https:")
      throw new TypeError(`url: expected http:// or https://, got ${options.url}`);
    this.origin = url.origin;
    this.basePath = url.pathname.replace(/\/+$/, "");
    this.pool = new Pool(this.origin, {
      connections: options.connections ?? 16,
      keepAliveTimeout: options.keepAliveMs ?? 30_000,
      connect: options.ca ? { ca: options.ca } : undefined,
    });
  }

  async call(
    request: WireRequest,
    options: { signal: AbortSignal; deadline: number; headers: Record<string, string> },
  ): Promise<WireResponse> {
    let response: Awaited<ReturnType<Pool["request"]>>;
    try {
      response = await this.pool.request({
        method: "POST",
        path: `${this.basePath}/v1/features`,
        headers: { "content-type": "application/json", accept: "application/json", ...options.headers },
        body: JSON.stringify(request),
        signal: options.signal,
      });
    } catch (error) {
      throw transportError(error, options.signal);
    }
    let text: string;
    try {
      text = await response.body.text();
    } catch (error) {
      throw transportError(error, options.signal);
    }
    const { statusCode } = response;
    if (statusCode === 200) {
      try {
        return JSON.parse(text) as WireResponse;
      } catch {
        throw new TesseraClientError("protocol", `the server answered 200 with a body that is not JSON`);
      }
    }
    let body: { message?: string; field?: string; reason?: string; view?: string } = {};
    try {
      body = JSON.parse(text);
    } catch {}
    const code = CODE_OF_STATUS[statusCode] ?? "internal";
    throw new TesseraClientError(
      code,
      `HTTP ${statusCode}: ${body.message ?? (text.slice(0, 200) || "no body")}`,
      {
        status: statusCode,
        field: body.field,
        retryAfterMs: retryAfterMs(response.headers["retry-after"]),
        reason: body.reason,
        view: body.view,
        // Only 503 means "try again": the server is shedding, draining or its store is down. A 503
        // with a reason (a gate or SLA refusal) holds until someone acts: the caller falls back.
        retriable: statusCode === 503 && body.reason === undefined,
      },
    );
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

function transportError(error: unknown, signal: AbortSignal): TesseraClientError {
  if (signal.aborted) {
    const reason = signal.reason as Error | undefined;
    return reason instanceof TesseraClientError
      ? reason
      : new TesseraClientError("cancelled", `call cancelled: ${reason?.message ?? "aborted"}`, {
          cause: error,
        });
  }
  const code = (error as { code?: string })?.code ?? "";
  const retriable = NETWORK_CODES.has(code);
  return new TesseraClientError(
    retriable ? "unavailable" : "internal",
    `HTTP request failed: ${(error as Error)?.message ?? error}${code ? ` (${code})` : ""}`,
    { retriable, cause: error },
  );
}

/**
 * The client's call logic against small real HTTP servers (node:http) and a scripted transport:
 * what is retried and what is not, Retry-After, the deadline, jittered backoff, hedging, and the
 * result's shape (statuses and view fields the client does not know yet pass through).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createClient, TesseraClientError, type Transport, type WireResponse } from "../src/index.js";

const OK: WireResponse = {
  asOf: 1_800_000_000_000,
  views: { card: { version: "v1", newestEventTime: 1_799_999_999_000 } },
  entities: {
    card_id: {
      features: ["card:n_1h", "card:last_country"],
      results: [
        { id: "c-1", values: [3, "FR"], statuses: ["present", "present"] },
        { id: "c-2", values: [0, null], statuses: ["missing", "missing"] },
      ],
    },
  },
};
const REQUEST = { features: ["card:n_1h", "card:last_country"], entities: { card_id: ["c-1", "c-2"] } };

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A server whose n-th request (0-based) is answered by `answer(n)`. */
async function server(answer: (n: number, req: IncomingMessage, res: ServerResponse) => void) {
  let n = 0;
  const bodies: unknown[] = [];
  const s = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      bodies.push(JSON.parse(body));
      answer(n++, req, res);
    });
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  s.closeAllConnections();
  return {
    url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
    requests: () => n,
    bodies,
    server: s,
  };
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
};

describe("over HTTP", () => {
  it("returns per-entity objects keyed by feature name, in request order", async () => {
    const s = await server((_n, _req, res) => json(res, 200, OK));
    const client = createClient({ url: s.url, apiKey: "k" });
    const result = await client.getFeatures(REQUEST);
    expect(s.bodies[0]).toEqual(REQUEST);
    expect(result.entities.card_id).toEqual([
      {
        key: "card_id",
        id: "c-1",
        features: {
          "card:n_1h": { value: 3, status: "present" },
          "card:last_country": { value: "FR", status: "present" },
        },
      },
      {
        key: "card_id",
        id: "c-2",
        features: {
          "card:n_1h": { value: 0, status: "missing" },
          "card:last_country": { value: null, status: "missing" },
        },
      },
    ]);
    expect(result.entity("card_id", "c-1")!["card:n_1h"]!.value).toBe(3);
    expect(result.entity("card_id", "nope")).toBeUndefined();
    expect(result.degraded).toBe(false);
    expect(result.attempts).toBe(1);
    expect(result.views["card"]!.version).toBe("v1");
    await client.close();
  });

  it("a 400 is never retried, and names the field", async () => {
    const s = await server((_n, _req, res) =>
      json(res, 400, {
        statusCode: 400,
        error: "invalid",
        message: "features[0]: unknown view nope",
        field: "features[0]",
      }),
    );
    const client = createClient({ url: s.url, retry: { maxAttempts: 5, initialBackoffMs: 1 } });
    const error = await client.getFeatures({ ...REQUEST, features: ["nope:x"] }).catch((e) => e);
    expect(error).toBeInstanceOf(TesseraClientError);
    expect(error).toMatchObject({
      code: "invalid",
      status: 400,
      field: "features[0]",
      retriable: false,
      attempts: 1,
    });
    expect(s.requests()).toBe(1);
    await client.close();
  });

  it("a 503 is retried after its Retry-After", async () => {
    const s = await server((n, _req, res) =>
      n === 0 ? json(res, 503, { message: "store unavailable" }, { "retry-after": "1" }) : json(res, 200, OK),
    );
    const client = createClient({ url: s.url, deadlineMs: 5000 });
    const started = Date.now();
    const result = await client.getFeatures(REQUEST);
    expect(Date.now() - started).toBeGreaterThanOrEqual(990);
    expect(result.attempts).toBe(2);
    expect(s.requests()).toBe(2);
    await client.close();
  });

  it("does not wait for a Retry-After that ends past the deadline: the 503 comes back at once", async () => {
    const s = await server((_n, _req, res) =>
      json(res, 503, { message: "shedding" }, { "retry-after": "5" }),
    );
    const client = createClient({ url: s.url, deadlineMs: 1000 });
    const started = Date.now();
    const error = await client.getFeatures(REQUEST).catch((e) => e);
    expect(Date.now() - started).toBeLessThan(500);
    expect(error).toMatchObject({ code: "unavailable", status: 503, retryAfterMs: 5000, attempts: 1 });
    await client.close();
  });

  it("a refused connection is retried until the deadline, then reported as unavailable", async () => {
    const s = await server(() => {});
    const url = s.url;
    await new Promise((r) => s.server.close(r)); // nothing listens there any more
    servers.length = 0;
    const client = createClient({
      url,
      deadlineMs: 600,
      retry: { maxAttempts: 100, initialBackoffMs: 20, maxBackoffMs: 80 },
    });
    const started = Date.now();
    const error = await client.getFeatures(REQUEST).catch((e) => e);
    const elapsed = Date.now() - started;
    expect(error).toMatchObject({ code: "unavailable", retriable: true });
    expect(error.attempts).toBeGreaterThan(3);
    expect(elapsed).toBeLessThan(900);
    await client.close();
  });

  it("a server that never answers ends in a deadline error at the deadline", async () => {
    const s = await server(() => {}); // holds every request
    const client = createClient({ url: s.url, deadlineMs: 300 });
    const started = Date.now();
    const error = await client.getFeatures(REQUEST).catch((e) => e);
    expect(error).toMatchObject({ code: "deadline" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(Date.now() - started).toBeLessThan(800);
    await client.close();
  });

  it("a hedged attempt answers when the first is stuck; the stuck one is cancelled", async () => {
    let firstClosed = false;
    const s = await server((n, req, res) => {
      if (n === 0) {
        req.socket.on("close", () => {
          firstClosed = true;
        });
        return; // stuck
      }
      json(res, 200, OK);
    });
    const client = createClient({ url: s.url, deadlineMs: 5000, hedge: { delayMs: 50 } });
    const started = Date.now();
    const result = await client.getFeatures(REQUEST);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(result.attempts).toBe(2);
    expect(result.entities.card_id![0]!.features["card:n_1h"]!.value).toBe(3);
    await new Promise((r) => setTimeout(r, 100));
    expect(firstClosed).toBe(true);
    await client.close();
  });

  it("without hedging the same stuck server costs the whole deadline", async () => {
    const s = await server((n, _req, res) => (n === 0 ? undefined : json(res, 200, OK)));
    const client = createClient({ url: s.url, deadlineMs: 400 });
    expect(await client.getFeatures(REQUEST).catch((e) => e.code)).toBe("deadline");
    await client.close();
  });
});

/** A transport that plays a script: each entry answers one attempt. */
function scripted(script: Array<WireResponse | TesseraClientError>) {
  const calls: number[] = [];
  const transport: Transport = {
    async call() {
      calls.push(Date.now());
      const next = script.shift();
      if (!next) throw new Error("script exhausted");
      if (next instanceof TesseraClientError) throw next;
      return next;
    },
    close: async () => {},
  };
  return { transport, calls };
}

const unavailable = () => new TesseraClientError("unavailable", "UNAVAILABLE", { retriable: true });

describe("retries", () => {
  it("back off exponentially with full jitter, capped", async () => {
    const { transport, calls } = scripted([unavailable(), unavailable(), unavailable(), unavailable(), OK]);
    const client = createClient({
      transport,
      deadlineMs: 5000,
      retry: { maxAttempts: 5, initialBackoffMs: 40, maxBackoffMs: 100 },
      random: () => 1, // the top of each jitter range
    });
    const result = await client.getFeatures(REQUEST);
    expect(result.attempts).toBe(5);
    const gaps = calls.slice(1).map((t, i) => t - calls[i]!);
    // 40, 80, then capped at 100.
    expect(gaps[0]).toBeGreaterThanOrEqual(38);
    expect(gaps[1]).toBeGreaterThanOrEqual(78);
    expect(gaps[2]).toBeGreaterThanOrEqual(98);
    expect(gaps[3]).toBeGreaterThanOrEqual(98);
    expect(Math.max(...gaps)).toBeLessThan(300);
  });

  it("jitter draws from [0, cap]: with a zero draw the retries are immediate", async () => {
    const { transport, calls } = scripted([unavailable(), unavailable(), OK]);
    const client = createClient({ transport, retry: { initialBackoffMs: 500 }, random: () => 0 });
    await client.getFeatures(REQUEST);
    expect(calls.at(-1)! - calls[0]!).toBeLessThan(100);
  });

  it("stop after maxAttempts with the last error", async () => {
    const { transport, calls } = scripted([unavailable(), unavailable(), unavailable(), OK]);
    const client = createClient({ transport, retry: { maxAttempts: 3, initialBackoffMs: 1 } });
    const error = await client.getFeatures(REQUEST).catch((e) => e);
    expect(error).toMatchObject({ code: "unavailable", attempts: 3 });
    expect(calls).toHaveLength(3);
  });

  it("retry: false makes one attempt", async () => {
    const { transport, calls } = scripted([unavailable(), OK]);
    const client = createClient({ transport, retry: false });
    expect(await client.getFeatures(REQUEST).catch((e) => e.code)).toBe("unavailable");
    expect(calls).toHaveLength(1);
  });

  it("the caller's signal cancels the call", async () => {
    const transport: Transport = {
      call: (_r, { signal }) =>
        new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason))),
      close: async () => {},
    };
    const client = createClient({ transport, deadlineMs: 5000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("shutting down")), 50);
    const error = await client.getFeatures({ ...REQUEST, signal: controller.signal }).catch((e) => e);
    expect(error).toMatchObject({ code: "cancelled", retriable: false });
    expect(String(error.message)).toContain("shutting down");
  });
});

describe("statuses and view fields the server adds", () => {
  it("pass through, and mark the result degraded", async () => {
    const gated: WireResponse = {
      asOf: 1,
      views: {
        card: {
          version: "v1",
          newestEventTime: 1,
          degraded: { reason: "drift gate open" },
          gate: "quarantine",
        },
      },
      entities: {
        card_id: {
          features: ["card:n_1h"],
          results: [{ id: "c-1", values: [5], statuses: ["quarantined"] }],
        },
      },
    };
    const { transport } = scripted([gated]);
    const result = await createClient({ transport }).getFeatures({
      features: ["card:n_1h"],
      entities: { card_id: ["c-1"] },
    });
    expect(result.degraded).toBe(true);
    expect(result.views["card"]).toEqual(gated.views["card"]);
    expect(result.entities.card_id[0]!.features["card:n_1h"]).toEqual({ value: 5, status: "quarantined" });
  });
});

/**
 * The pieces the hardening rests on, without a server: the byte-bounded cache, the request check,
 * what counts as a store outage, client keys for the failed-authentication limit, the JWT policy.
 */
import { generateKeyPairSync } from "node:crypto";
import { ConfigError } from "@tessera/runtime";
import { StoreRequestError, StoreUnavailableError } from "@tessera/stores";
import fc from "fast-check";
import { createSigner } from "fast-jwt";
import { describe, expect, it } from "vitest";
import { clientKey } from "../src/auth.js";
import { ByteBoundedCache } from "../src/bounded-cache.js";
import { isStoreOutage } from "../src/breaker.js";
import { ServeError } from "../src/errors.js";
import { algorithmFor, jwtVerifier } from "../src/jwt.js";
import { checkRequest } from "../src/validate.js";

describe("ByteBoundedCache", () => {
  it("never holds more than its budget, keeps the most recently used, and counts exactly", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom("set", "get"), fc.string({ maxLength: 3 }), fc.nat(400)), {
          maxLength: 300,
        }),
        (ops) => {
          const cache = new ByteBoundedCache<number>(1000, (_key, size) => size);
          const model = new Map<string, number>();
          for (const [op, key, size] of ops) {
            if (op === "get") {
              const value = cache.get(key);
              expect(value).toBe(model.get(key));
              if (value !== undefined) {
                model.delete(key);
                model.set(key, value);
              }
              continue;
            }
            cache.set(key, size);
            model.delete(key);
            if (size <= 1000) model.set(key, size);
            let total = [...model.values()].reduce((a, b) => a + b, 0);
            while (total > 1000) {
              const [oldest, bytes] = model.entries().next().value!;
              model.delete(oldest);
              total -= bytes;
            }
            expect(cache.bytes).toBe(total);
            expect(cache.bytes).toBeLessThanOrEqual(1000);
            expect(cache.size).toBe(model.size);
          }
        },
      ),
    );
  });
});

describe("checkRequest", () => {
  const limits = { maxFeatures: 3, maxEntities: 4, maxContextDepth: 2 };
  const ok = { features: ["v:f"], entities: { k: ["a"] } };
  const field = (request: unknown) => {
    try {
      checkRequest(request as never, limits);
      return null;
    } catch (error) {
      expect(error).toBeInstanceOf(ServeError);
      return (error as ServeError).field;
    }
  };

  it("names the field of each violated limit", () => {
    expect(field(ok)).toBeNull();
    expect(field({ ...ok, features: ["v:f", "v:g", "v:h", "v:i"] })).toBe("features");
    expect(field({ ...ok, features: ["v:f", ""] })).toBe("features[1]");
    expect(field({ ...ok, features: [`v:${"x".repeat(511)}`] })).toBe("features[0]");
    expect(field({ ...ok, entities: { k: ["a", "\ud800"] } })).toBe("entities.k[1]");
    expect(field({ ...ok, entities: { k: ["a", "b\udc00c"] } })).toBe("entities.k[1]");
    expect(field({ ...ok, entities: { k: ["😀".repeat(256)] } })).toBeNull();
    expect(field({ ...ok, entities: { k: ["😀".repeat(257)] } })).toBe("entities.k[0]");
    expect(field({ ...ok, entities: { k: ["a", "b", "c"], j: ["d", "e"] } })).toBe("entities");
    expect(field({ ...ok, entities: { k: ["a", "b", "c", "d", "e"] } })).toBe("entities.k");
    expect(field({ ...ok, entities: { "\ud800": ["a"] } })).toBe("entities");
    expect(field({ ...ok, context: { a: [1] } })).toBeNull();
    expect(field({ ...ok, context: { a: [[1]] } })).toBe("context.a[0]");
    expect(field({ ...ok, context: { a: "\udfff" } })).toBe("context.a");
    expect(field({ ...ok, context: [] })).toBe("context");
  });

  it("accepts any well-formed text within the limits (property)", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", minLength: 1, maxLength: 200 }), (id) => {
        expect(field({ ...ok, entities: { k: [id] } })).toBeNull();
      }),
    );
  });
});

describe("isStoreOutage", () => {
  it("counts the store being down or slow, never an error the request caused", () => {
    expect(isStoreOutage(new StoreUnavailableError("redis", "connection lost"))).toBe(true);
    expect(isStoreOutage(new ServeError("unavailable", "timed out"))).toBe(true);
    const uri = new StoreUnavailableError("redis", "readTiles: URI malformed", { cause: new URIError("x") });
    expect(isStoreOutage(uri)).toBe(false);
    expect(isStoreOutage(new StoreRequestError("redis", "view not applied"))).toBe(false);
    expect(isStoreOutage(new ServeError("invalid", "bad id", "entities.k[0]"))).toBe(false);
    expect(isStoreOutage(new TypeError("bug"))).toBe(false);
  });
});

describe("clientKey", () => {
  it("one key per IPv4 address and per IPv6 /64; IPv4-mapped IPv6 is IPv4", () => {
    expect(clientKey("127.0.0.1")).toBe("127.0.0.1");
    expect(clientKey("::ffff:127.0.0.1")).toBe("127.0.0.1");
    expect(clientKey("2001:db8:1:2::1")).toBe("2001:db8:1:2::/64");
    expect(clientKey("2001:db8:1:2:aaaa:bbbb:cccc:dddd")).toBe("2001:db8:1:2::/64");
    expect(clientKey("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(clientKey("::1")).toBe("0:0:0:0::/64");
    expect(clientKey(undefined)).toBe("unknown");
  });
});

describe("JWT policy", () => {
  const secret = "s".repeat(32);
  it("fixes one algorithm per key and refuses weak or unsupported keys at start", () => {
    expect(algorithmFor({ secret })).toBe("HS256");
    expect(() => algorithmFor({ secret: "short" })).toThrow(ConfigError);
    const pem = (k: ReturnType<typeof generateKeyPairSync>["publicKey"]) =>
      Buffer.from(k.export({ type: "spki", format: "pem" }) as string);
    expect(
      algorithmFor({ publicKey: pem(generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey) }),
    ).toBe("RS256");
    expect(
      algorithmFor({ publicKey: pem(generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey) }),
    ).toBe("ES256");
    expect(() =>
      algorithmFor({ publicKey: pem(generateKeyPairSync("ec", { namedCurve: "P-384" }).publicKey) }),
    ).toThrow(/P-256/);
    expect(() => algorithmFor({ publicKey: pem(generateKeyPairSync("ed25519").publicKey) })).toThrow(
      ConfigError,
    );
  });

  it("requires exp, bounds the lifetime, and requires the configured issuer and audience", () => {
    const now = Date.now();
    const { verify } = jwtVerifier({
      secret,
      issuer: "i",
      audience: "a",
      maxLifetimeSeconds: 600,
      now: () => now,
    });
    const sign = (claims: Record<string, unknown>) =>
      createSigner({ key: secret, algorithm: "HS256" })(claims);
    const exp = Math.floor(now / 1000) + 60;
    const base = { sub: "s", views: ["*"], iss: "i", aud: "a", exp };
    expect(verify(sign(base))["sub"]).toBe("s");
    expect(() => verify(sign({ ...base, exp: undefined }))).toThrow(/exp/);
    expect(() => verify(sign({ ...base, exp: exp + 3600 }))).toThrow(/600 s/);
    expect(() => verify(sign({ ...base, iat: exp - 3600 }))).toThrow(/lifetime/);
    expect(() => verify(sign({ ...base, iss: undefined }))).toThrow(/iss/);
    expect(() => verify(sign({ ...base, aud: undefined }))).toThrow(/aud/);
    expect(() => verify(sign({ ...base, views: undefined }))).toThrow(/views/);
  });
});

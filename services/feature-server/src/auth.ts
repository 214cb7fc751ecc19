/**
 * Who may ask for what: API keys (only their SHA-256 is stored), or JWTs; each principal has a list
 * of views and its own token bucket. Failed authentication is limited per client address: once an
 * address has spent its failure budget, its requests are refused (429) before their credentials are
 * looked at, so guessing keys or forging tokens is slow and costs the server no verification work.
 * One Authenticator serves HTTP and gRPC, so every limit is shared across both protocols.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { isIPv6 } from "node:net";
import { parse as parseYaml } from "yaml";
import { ByteBoundedCache, stringBytes } from "./bounded-cache.js";
import { ServeError } from "./errors.js";
import type { JwtVerify } from "./jwt.js";
import { type Principal, RIGHTS, type Right } from "./serve.js";
import { wellFormed } from "./validate.js";

export interface ApiKeyEntry {
  /** Shown in audit lines and metrics; never the key itself. */
  id: string;
  /** Hex SHA-256 of the key. Keys are random 32-byte secrets, so a fast hash is enough (no dictionary). */
  sha256: string;
  /** Views the key may read; ["*"] for all. */
  views: string[];
  /** More than reading: `gate` operates the quality gates (absent: none). */
  rights?: Right[];
  ratePerSecond?: number;
  burst?: number;
}

export interface Credentials {
  apiKey?: string;
  /** The Authorization header value ("Bearer <jwt>"). */
  authorization?: string;
  /** The client's address (TCP peer), for the failed-authentication limit. */
  address?: string;
}

export interface AuthOptions {
  keys: ApiKeyEntry[];
  /** Verifies a JWT and returns its claims (throws when invalid); absent when JWTs are off. */
  verifyJwt?: JwtVerify;
  allowAnonymous: boolean;
  ratePerSecond: number;
  burst: number;
  /** Failed authentications an address may make: this many a second, at most `authFailureBurst` at once. */
  authFailuresPerSecond: number;
  authFailureBurst: number;
  /** Byte budget of the rate-limit state (per principal and per address). */
  rateLimitBytes: number;
  now?: () => number;
}

/** Longest JWT `sub` accepted: it becomes a rate-limit key and an audit field. */
export const MAX_SUBJECT_LENGTH = 256;

/**
 * One bucket per client: an IPv4 address, or an IPv6 /64 (one host commonly holds a whole /64, so
 * a finer key would let it rotate addresses). IPv4-mapped IPv6 is IPv4, so HTTP and gRPC agree.
 */
export function clientKey(address: string | undefined): string {
  if (!address) return "unknown";
  const plain = address.startsWith("::ffff:") && !address.slice(7).includes(":") ? address.slice(7) : address;
  if (!isIPv6(plain)) return plain;
  const [head = "", tail = ""] = plain.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = plain.includes("::")
    ? [...left, ...new Array(8 - left.length - right.length).fill("0"), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(":")}::/64`;
}

export const hashKey = (key: string) => createHash("sha256").update(key).digest("hex");

/** Reads a keys file ({ keys: [...] }, YAML or JSON), checking every entry. */
export function readKeysFile(path: string): ApiKeyEntry[] {
  const doc = parseYaml(readFileSync(path, "utf8")) as { keys?: unknown };
  if (!doc || !Array.isArray(doc.keys)) throw new Error(`${path}: expected a top-level \`keys:\` list`);
  return doc.keys.map((raw, i) => {
    const entry = raw as Partial<ApiKeyEntry>;
    const where = `${path}: keys[${i}]`;
    if (typeof entry.id !== "string" || entry.id === "") throw new Error(`${where}.id: required`);
    if (typeof entry.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(entry.sha256)) {
      throw new Error(`${where}.sha256: must be 64 lowercase hex digits (sha256 of the key)`);
    }
    if (!Array.isArray(entry.views) || !entry.views.every((v) => typeof v === "string")) {
      throw new Error(`${where}.views: must be a list of view names (or ["*"])`);
    }
    if (
      entry.rights !== undefined &&
      !(Array.isArray(entry.rights) && entry.rights.every((r) => (RIGHTS as readonly unknown[]).includes(r)))
    ) {
      throw new Error(`${where}.rights: must be a list of ${RIGHTS.join(", ")}`);
    }
    for (const field of ["ratePerSecond", "burst"] as const) {
      const value = entry[field];
      if (value !== undefined && !(typeof value === "number" && value > 0)) {
        throw new Error(`${where}.${field}: must be a positive number`);
      }
    }
    return entry as ApiKeyEntry;
  });
}

/** A token bucket: `rate` tokens a second, at most `burst` saved up. */
class Bucket {
  private tokens: number;
  private at: number;
  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.at = now;
  }

  /** Takes a token; returns 0, or the seconds until one is available. */
  take(now: number): number {
    const wait = this.wait(now);
    if (wait === 0) this.tokens -= 1;
    return wait;
  }

  /** 0 if a token is available now, else the seconds until one is (takes nothing). */
  wait(now: number): number {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.rate);
    this.at = now;
    return this.tokens >= 1 ? 0 : Math.max(1, Math.ceil((1 - this.tokens) / this.rate));
  }
}

const bucketBytes = (key: string) => stringBytes(key) + 96;

interface Known {
  principal: Principal;
  rate: number;
  burst: number;
}

export class Authenticator {
  private readonly byHash = new Map<string, Known>();
  /** Per principal, and per client address for failures: bounded in bytes (JWT subjects and
   * addresses are unbounded); an evicted bucket starts full again. */
  private readonly buckets: ByteBoundedCache<Bucket>;
  private readonly failures: ByteBoundedCache<Bucket>;
  private readonly now: () => number;
  private readonly anonymous: Known;

  constructor(private readonly options: AuthOptions) {
    this.now = options.now ?? Date.now;
    this.buckets = new ByteBoundedCache(options.rateLimitBytes / 2, bucketBytes);
    this.failures = new ByteBoundedCache(options.rateLimitBytes / 2, bucketBytes);
    for (const key of options.keys) {
      this.byHash.set(key.sha256, {
        principal: {
          id: key.id,
          views: key.views.includes("*") ? "*" : new Set(key.views),
          ...(key.rights?.length ? { rights: new Set(key.rights) } : {}),
        },
        rate: key.ratePerSecond ?? options.ratePerSecond,
        burst: key.burst ?? options.burst,
      });
    }
    this.anonymous = {
      principal: { id: "anonymous", views: "*" },
      rate: options.ratePerSecond,
      burst: options.burst,
    };
  }

  get enabled(): boolean {
    return !this.options.allowAnonymous;
  }

  /** Bytes of rate-limit state held (estimated). */
  get stateBytes(): number {
    return this.buckets.bytes + this.failures.bytes;
  }

  /** Resolves credentials to a principal and takes one token from its bucket. */
  admit(credentials: Credentials): Principal {
    const now = this.now();
    const client = clientKey(credentials.address);
    const failures = this.failures.get(client);
    const locked = failures?.wait(now) ?? 0;
    if (locked > 0) {
      throw new ServeError(
        "limited",
        "too many failed authentications from this address; retry later",
        undefined,
        locked,
      );
    }
    let known: Known;
    try {
      known = this.identify(credentials);
    } catch (error) {
      if (error instanceof ServeError && error.kind === "unauthenticated") {
        const bucket =
          failures ?? new Bucket(this.options.authFailuresPerSecond, this.options.authFailureBurst, now);
        bucket.take(now);
        this.failures.set(client, bucket);
      }
      throw error;
    }
    let bucket = this.buckets.get(known.principal.id);
    if (!bucket) {
      bucket = new Bucket(known.rate, known.burst, now);
      this.buckets.set(known.principal.id, bucket);
    }
    const wait = bucket.take(now);
    if (wait > 0)
      throw new ServeError("limited", `rate limit of key ${known.principal.id} exceeded`, undefined, wait);
    return known.principal;
  }

  private identify({ apiKey, authorization }: Credentials): Known {
    if (apiKey) {
      const known = this.byHash.get(hashKey(apiKey));
      if (!known) throw new ServeError("unauthenticated", "unknown API key", "x-api-key");
      return known;
    }
    if (authorization) {
      const match = /^Bearer\s+(\S+)$/i.exec(authorization);
      if (!match || !this.options.verifyJwt) {
        throw new ServeError(
          "unauthenticated",
          "expected `Bearer <jwt>` (JWTs are enabled on this server only when configured)",
          "authorization",
        );
      }
      let claims: Record<string, unknown>;
      try {
        claims = this.options.verifyJwt(match[1]!);
      } catch (error) {
        throw new ServeError(
          "unauthenticated",
          `invalid token: ${(error as Error).message}`,
          "authorization",
        );
      }
      const sub = claims["sub"];
      const views = claims["views"];
      if (typeof sub !== "string" || sub === "" || sub.length > MAX_SUBJECT_LENGTH || !wellFormed(sub))
        throw new ServeError(
          "unauthenticated",
          `token has no \`sub\` of 1 to ${MAX_SUBJECT_LENGTH} characters`,
          "authorization",
        );
      if (!Array.isArray(views) || !views.every((v) => typeof v === "string")) {
        throw new ServeError(
          "unauthenticated",
          "token has no `views` claim (a list of view names)",
          "authorization",
        );
      }
      // Optional `rights` claim: only the rights this server knows count.
      const rights = Array.isArray(claims["rights"])
        ? (claims["rights"] as unknown[]).filter((r): r is Right =>
            (RIGHTS as readonly unknown[]).includes(r),
          )
        : [];
      return {
        principal: {
          id: `jwt:${sub}`,
          views: views.includes("*") ? "*" : new Set(views as string[]),
          ...(rights.length ? { rights: new Set(rights) } : {}),
        },
        rate: this.options.ratePerSecond,
        burst: this.options.burst,
      };
    }
    if (this.options.allowAnonymous) return this.anonymous;
    throw new ServeError(
      "unauthenticated",
      "an API key (x-api-key) or a bearer token is required",
      "x-api-key",
    );
  }
}

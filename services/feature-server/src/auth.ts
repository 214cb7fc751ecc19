/**
 * Who may ask for what: API keys (only their SHA-256 is stored), or JWTs; each principal has a list
 * of views and its own token bucket. One Authenticator serves HTTP and gRPC, so a key's rate limit is
 * shared across both protocols.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { ServeError } from "./errors.js";
import type { Principal } from "./serve.js";

export interface ApiKeyEntry {
  /** Shown in audit lines and metrics; never the key itself. */
  id: string;
  /** Hex SHA-256 of the key. Keys are random 32-byte secrets, so a fast hash is enough (no dictionary). */
  sha256: string;
  /** Views the key may read; ["*"] for all. */
  views: string[];
  ratePerSecond?: number;
  burst?: number;
}

export interface Credentials {
  apiKey?: string;
  /** The Authorization header value ("Bearer <jwt>"). */
  authorization?: string;
}

export interface AuthOptions {
  keys: ApiKeyEntry[];
  /** Verifies a JWT and returns its claims (throws when invalid); absent when JWTs are off. */
  verifyJwt?: (token: string) => Record<string, unknown>;
  allowAnonymous: boolean;
  ratePerSecond: number;
  burst: number;
  now?: () => number;
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
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.rate);
    this.at = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - this.tokens) / this.rate));
  }
}

interface Known {
  principal: Principal;
  rate: number;
  burst: number;
}

const MAX_JWT_SUBJECTS = 100_000;

export class Authenticator {
  private readonly byHash = new Map<string, Known>();
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;
  private readonly anonymous: Known;

  constructor(private readonly options: AuthOptions) {
    this.now = options.now ?? Date.now;
    for (const key of options.keys) {
      this.byHash.set(key.sha256, {
        principal: { id: key.id, views: key.views.includes("*") ? "*" : new Set(key.views) },
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

  /** Resolves credentials to a principal and takes one token from its bucket. */
  admit(credentials: Credentials): Principal {
    const known = this.identify(credentials);
    const now = this.now();
    let bucket = this.buckets.get(known.principal.id);
    if (!bucket) {
      // JWT subjects are unbounded; keep the map bounded (oldest first out).
      if (this.buckets.size >= MAX_JWT_SUBJECTS) this.buckets.delete(this.buckets.keys().next().value!);
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
      if (typeof sub !== "string" || sub === "")
        throw new ServeError("unauthenticated", "token has no `sub`", "authorization");
      if (!Array.isArray(views) || !views.every((v) => typeof v === "string")) {
        throw new ServeError(
          "unauthenticated",
          "token has no `views` claim (a list of view names)",
          "authorization",
        );
      }
      return {
        principal: { id: `jwt:${sub}`, views: views.includes("*") ? "*" : new Set(views as string[]) },
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

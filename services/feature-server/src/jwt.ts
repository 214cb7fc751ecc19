/**
 * The JWT policy (docs/security.md): exactly one algorithm, fixed by the configured key — HS256 for
 * a shared secret, RS256 for an RSA public key, ES256 for a P-256 public key — and the claims the
 * configuration names are required, not merely checked when present: `sub`, `views`, `exp`, plus
 * `iss` and `aud` when an issuer or audience is configured. A token may not live longer than the
 * configured maximum (counted from now, and from `iat` when it has one).
 */
import { createPublicKey } from "node:crypto";
import { ConfigError } from "@tessera/runtime";
import { createVerifier } from "fast-jwt";

export type JwtAlgorithm = "HS256" | "RS256" | "ES256";

export interface JwtPolicy {
  /** HS256 shared secret (at least 32 bytes: RFC 7518 §3.2). */
  secret?: string;
  /** PEM public key (RSA → RS256, EC P-256 → ES256). */
  publicKey?: Buffer;
  issuer?: string;
  audience?: string;
  maxLifetimeSeconds: number;
  now?: () => number;
}

/** Verifies a token and returns its claims; throws (with the reason) when it is not acceptable. */
export type JwtVerify = (token: string) => Record<string, unknown>;

const MIN_SECRET_BYTES = 32;

/** The one algorithm a key allows; a configuration error for anything else. */
export function algorithmFor(policy: Pick<JwtPolicy, "secret" | "publicKey">): JwtAlgorithm {
  if (policy.secret !== undefined && policy.publicKey !== undefined) {
    throw new ConfigError(["auth: set jwtSecret or jwtPublicKeyFile, not both"]);
  }
  if (policy.secret !== undefined) {
    if (Buffer.byteLength(policy.secret) < MIN_SECRET_BYTES) {
      throw new ConfigError([`auth.jwtSecret: must be at least ${MIN_SECRET_BYTES} bytes for HS256`]);
    }
    return "HS256";
  }
  let key: ReturnType<typeof createPublicKey>;
  try {
    key = createPublicKey(policy.publicKey!);
  } catch (error) {
    throw new ConfigError([`auth.jwtPublicKeyFile: not a PEM public key (${(error as Error).message})`]);
  }
  if (key.asymmetricKeyType === "rsa") return "RS256";
  if (key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1") return "ES256";
  throw new ConfigError([
    `auth.jwtPublicKeyFile: a ${key.asymmetricKeyType} key; use RSA (RS256) or EC P-256 (ES256)`,
  ]);
}

export function jwtVerifier(policy: JwtPolicy): { algorithm: JwtAlgorithm; verify: JwtVerify } {
  const algorithm = algorithmFor(policy);
  const now = policy.now ?? Date.now;
  const required = ["sub", "views", "exp"];
  if (policy.issuer !== undefined) required.push("iss");
  if (policy.audience !== undefined) required.push("aud");
  const verifier = createVerifier({
    key: policy.secret ?? policy.publicKey!.toString("utf8"),
    algorithms: [algorithm],
    requiredClaims: required,
    ...(policy.issuer !== undefined ? { allowedIss: policy.issuer } : {}),
    ...(policy.audience !== undefined ? { allowedAud: policy.audience } : {}),
  });
  const verify: JwtVerify = (token) => {
    const claims = verifier(token) as Record<string, unknown>;
    const exp = claims["exp"];
    if (typeof exp !== "number" || !Number.isFinite(exp)) throw new Error("`exp` is not a number");
    const maxMs = policy.maxLifetimeSeconds * 1000;
    if (exp * 1000 - now() > maxMs) {
      throw new Error(`the token expires more than ${policy.maxLifetimeSeconds} s from now`);
    }
    const iat = claims["iat"];
    if (typeof iat === "number" && (exp - iat) * 1000 > maxMs) {
      throw new Error(`the token's lifetime (exp - iat) exceeds ${policy.maxLifetimeSeconds} s`);
    }
    return claims;
  };
  return { algorithm, verify };
}

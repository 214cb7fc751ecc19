/**
 * Finding 3: JWT claims. A token without `iss`/`aud` was accepted although jwtIssuer/jwtAudience
 * were configured, a token without `exp` never expired, and HS512 was accepted where HS256 is
 * documented. Now the configured claims are required, `exp` is required and bounded by
 * auth.jwtMaxLifetimeSeconds, and the key fixes exactly one algorithm (HS256, RS256 or ES256).
 */
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { createSigner } from "fast-jwt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOthersServed, grpcCall, hs256, JWT, post, type Secured, startSecured } from "./harness.js";

const request = { features: ["card:n_1h"], entities: { card_id: ["card-1"] } };
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const inSeconds = (s: number) => Math.floor(Date.now() / 1000) + s;

let hs: Secured;
let rs: Secured;
const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const rsaPrivate = rsa.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
const foreign = generateKeyPairSync("rsa", { modulusLength: 2048 });

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "tessera-jwt-"));
  const publicKeyFile = join(dir, "jwt.pem");
  writeFileSync(publicKeyFile, rsa.publicKey.export({ type: "spki", format: "pem" }));
  hs = await startSecured();
  rs = await startSecured({ jwt: { jwtPublicKeyFile: publicKeyFile, jwtIssuer: JWT.issuer } });
});
afterAll(async () => {
  await hs?.stop();
  await rs?.stop();
});

async function expectRefused(server: Secured, token: string, why: string) {
  const res = await post(server.url, request, bearer(token));
  expect(res.status, `${why}: ${res.text}`).toBe(401);
  expect(res.body.field).toBe("authorization");
  const answer = await grpcCall(
    server.grpcTarget,
    { features: request.features, entities: { card_id: { ids: ["card-1"] } } },
    { authorization: `Bearer ${token}` },
  );
  expect(answer.code, why).toBe(grpc.status.UNAUTHENTICATED);
}

describe("finding 3: the JWT policy is enforced, not merely checked when present", () => {
  it("HS256 with issuer and audience: the valid token is admitted on both protocols", async () => {
    const token = hs256({});
    expect((await post(hs.url, request, bearer(token))).status).toBe(200);
    const answer = await grpcCall(
      hs.grpcTarget,
      { features: request.features, entities: { card_id: { ids: ["card-1"] } } },
      { authorization: `Bearer ${token}` },
    );
    expect(answer.code, answer.details).toBe(grpc.status.OK);
  });

  it("refuses a token without iss, without aud, without exp, or living too long", async () => {
    await expectRefused(hs, hs256({ iss: undefined }), "no iss");
    await expectRefused(hs, hs256({ aud: undefined }), "no aud");
    await expectRefused(hs, hs256({ iss: "https://elsewhere.test" }), "wrong iss");
    await expectRefused(hs, createSigner({ key: JWT.secret, algorithm: "HS256" })({ ...claims() }), "no exp");
    await expectRefused(hs, hs256({ exp: inSeconds(2 * 3600) }), "exp 2 h away (max 1 h)");
    await expectRefused(hs, hs256({ iat: inSeconds(-7200), exp: inSeconds(60) }), "lifetime 2 h");
    await expectRefused(hs, hs256({ exp: inSeconds(-5) }), "expired");
    await expectOthersServed(hs);
  });

  it("refuses every algorithm but HS256 for a shared secret", async () => {
    await expectRefused(hs, hs256({}, "HS512"), "HS512");
    await expectRefused(hs, hs256({}, "HS384"), "HS384");
    const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString("base64url")}.${Buffer.from(
      JSON.stringify({ ...claims(), exp: inSeconds(60) }),
    ).toString("base64url")}.`;
    await expectRefused(hs, none, "alg none");
  });

  it("RSA public key: RS256 only, signed by that key only", async () => {
    const rs256 = (algorithm: "RS256" | "RS512" | "PS256", key = rsaPrivate) =>
      createSigner({ key, algorithm, expiresIn: 60_000 })({ ...claims(), aud: undefined });
    expect((await post(rs.url, request, bearer(rs256("RS256")))).status).toBe(200);
    await expectRefused(rs, rs256("RS512"), "RS512");
    await expectRefused(rs, rs256("PS256"), "PS256");
    const other = foreign.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    await expectRefused(rs, rs256("RS256", other), "foreign key");
    const pem = rsa.publicKey.export({ type: "spki", format: "pem" }).toString();
    await expectRefused(
      rs,
      createSigner({ key: pem, algorithm: "HS256", expiresIn: 60_000 })({ ...claims(), aud: undefined }),
      "HS256 signed with the public key",
    );
    await expectOthersServed(rs);
  });
});

function claims() {
  return { iss: JWT.issuer, aud: JWT.audience, sub: "svc", views: ["*"] };
}

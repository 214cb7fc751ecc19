/**
 * HTTP/JSON: POST /v1/features, GET /v1/features/:entityKey/:entityId, OpenAPI at /docs, and the
 * ops routes (/metrics, /healthz, /readyz). JSON schemas validate every request and serialise every
 * response; every refusal names the offending field.
 */
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import underPressure from "@fastify/under-pressure";
import type { Logger, Readiness } from "@tessera/runtime";
import { opsRoutes } from "@tessera/runtime";
import type { Definitions } from "@tessera/transforms";
import type {
  FastifyError,
  FastifyInstance,
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
} from "fastify";
import type { Registry } from "prom-client";
import type { Authenticator } from "./auth.js";
import type { FeatureServerConfig } from "./config.js";
import { HTTP_STATUS, ServeError } from "./errors.js";
import type { FeatureLogger } from "./feature-log.js";
import { type GateOperator, gateRoutes } from "./gate-routes.js";
import type { LineageService } from "./lineage.js";
import type { ServerMetrics } from "./metrics.js";
import { featureResponseJson } from "./response-json.js";
import type { FeatureRequest, FeatureService, Principal } from "./serve.js";
import { traceHttp } from "./tracing.js";
import { checkRequest } from "./validate.js";

declare module "fastify" {
  interface FastifyRequest {
    principal: Principal | null;
    audit: { views: string[]; entities: number } | null;
  }
}

export interface HttpOptions {
  config: FeatureServerConfig;
  service: FeatureService;
  lineage: LineageService;
  auth: Authenticator;
  metrics: ServerMetrics;
  registry: Registry;
  featureLog: FeatureLogger | undefined;
  auditLog: Logger;
  readiness: () => Readiness;
  draining: () => boolean;
  plugins: FastifyPluginAsync[];
  /** The gate operator API (/v1/gates), where this server writes the gate topic. */
  gates?: { operator: GateOperator; definitions: Definitions };
}

const ID = { type: "string", minLength: 1, maxLength: 256 } as const;

const errorSchema = {
  type: "object",
  properties: {
    statusCode: { type: "integer" },
    error: { type: "string" },
    message: { type: "string" },
    field: { type: "string", description: "The offending part of the request, e.g. entities.card_id[3]" },
    reason: {
      type: "string",
      enum: ["freshness_sla", "store_unavailable", "quality_gate"],
      description: "Machine-readable cause of a 503 a caller may fall back on (with `view`)",
    },
    view: { type: "string", description: "The view the `reason` is about" },
  },
} as const;

const gateVerdictSchema = {
  type: "object",
  properties: {
    subject: { type: "string", description: "view:<name> or model:<name>" },
    state: { type: "string", enum: ["tripped", "acked", "overridden"] },
    causes: {
      type: "array",
      items: { type: "string", enum: ["freshness_sla", "drift_critical", "accuracy_floor", "manual"] },
    },
    since: { type: "integer", description: "When it tripped (epoch ms)" },
    overrideUntil: { type: "integer", description: "overridden: served normally until then (epoch ms)" },
    onTrip: { type: "string", enum: ["quarantine", "refuse"] },
    incident: { type: "string" },
  },
} as const;

export const responseSchema = {
  type: "object",
  properties: {
    asOf: { type: "integer", description: "The time the windows were evaluated at (epoch ms)" },
    views: {
      type: "object",
      description:
        "Per view: its definition version, the newest event time seen (freshness), and whether it is degraded and why",
      additionalProperties: {
        type: "object",
        properties: {
          version: { type: "string" },
          newestEventTime: { type: ["integer", "null"] },
          degraded: {
            type: "boolean",
            description:
              "True when `reasons` is not empty: its values are `quarantined` (a tripped quality gate) or `stale`",
          },
          reasons: {
            type: "array",
            items: {
              type: "object",
              properties: {
                code: { type: "string", enum: ["freshness_sla", "store_unavailable", "quality_gate"] },
                message: { type: "string" },
                subject: { type: "string", description: "quality_gate: view:<name> or model:<name>" },
                ageMs: {
                  type: "integer",
                  description: "freshness_sla: age of the view's newest data at asOf",
                },
                maxAgeMs: { type: "integer", description: "freshness_sla: the view's SLA" },
              },
            },
          },
          gates: {
            type: "array",
            description:
              "Quality gates covering the view that are not ok (an overridden one is not acted on)",
            items: gateVerdictSchema,
          },
        },
      },
    },
    entities: {
      type: "object",
      description: "Per entity key of the request",
      additionalProperties: {
        type: "object",
        properties: {
          features: { type: "array", items: { type: "string" } },
          results: {
            type: "array",
            items: {
              type: "object",
              properties: {
                id: { type: "string" },
                values: { type: "array", items: {}, description: "Aligned with `features`" },
                statuses: {
                  type: "array",
                  items: { type: "string", enum: ["present", "missing", "stale", "quarantined", "error"] },
                },
              },
            },
          },
        },
      },
    },
  },
} as const;

/** Every status a feature route can answer with (docs/api.md); 500 only on a server bug. */
const errorResponses = {
  400: { description: "Invalid request (the field is named)", ...errorSchema },
  401: { description: "No or bad credentials", ...errorSchema },
  403: { description: "A view outside the principal's list", ...errorSchema },
  413: { description: "Body larger than limits.maxRequestBytes", ...errorSchema },
  415: { description: "Body that is not application/json", ...errorSchema },
  429: { description: "Rate limit, or too many failed authentications from this address", ...errorSchema },
  500: { description: "Server bug", ...errorSchema },
  503: {
    description:
      "Store unavailable, starting, shedding load, shutting down, or a view past its freshness SLA whose policy is refuse (`reason`)",
    ...errorSchema,
  },
};

/** Feature routes need credentials; the ops routes and /docs do not (they carry no feature values). */
const credentials: Array<Record<string, string[]>> = [{ apiKey: [] }, { bearer: [] }];

/** 405 with `Allow` for the methods a path does not serve (instead of a 404 that hides the path). */
function refuseOtherMethods(app: FastifyInstance, url: string, allowed: readonly string[]): void {
  const allow = allowed.join(", ");
  const refuse = async (request: FastifyRequest, reply: FastifyReply) =>
    reply
      .code(405)
      .header("allow", allow)
      .send({
        statusCode: 405,
        error: "method not allowed",
        message: `${request.method} is not served on ${url}; use ${allow}`,
      });
  app.route({
    method: app.supportedMethods.filter((m) => !allowed.includes(m)),
    url,
    schema: { hide: true },
    // Before the body is read: whatever it holds, the method is the answer.
    onRequest: refuse,
    handler: refuse,
  });
}

/** Ajv's error path (`/entities/card_id/0`) as the field name clients see (`entities.card_id[0]`). */
function fieldOf(error: FastifyError): string {
  const first = error.validation?.[0];
  if (!first) return "body";
  const parts = first.instancePath
    .split("/")
    .filter(Boolean)
    .map((p) => p.replaceAll("~1", "/").replaceAll("~0", "~"));
  const params = first.params as Record<string, unknown>;
  if (first.keyword === "required") parts.push(String(params["missingProperty"]));
  if (first.keyword === "additionalProperties") parts.push(String(params["additionalProperty"]));
  const path = parts.reduce((out, p) => (/^\d+$/.test(p) ? `${out}[${p}]` : out ? `${out}.${p}` : p), "");
  return path || (error.validationContext === "body" ? "body" : String(error.validationContext ?? "request"));
}

/** Fastify's own refusals before routing (a URL that is not percent-encoded UTF-8), in our shape. */
export function frameworkErrors(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const bad = error.code === "FST_ERR_BAD_URL";
  const statusCode = bad ? 400 : (error.statusCode ?? 500);
  reply.code(statusCode).send({
    statusCode,
    error: bad ? "invalid" : "internal",
    message: bad ? "url: not a valid percent-encoded UTF-8 path" : "internal error",
    field: bad ? "url" : undefined,
  });
}

/** Builds the routes; returns the load-shedding state the gRPC server shares. */
export async function buildHttp(
  app: FastifyInstance,
  options: HttpOptions,
): Promise<{ underPressure: () => boolean }> {
  let underPressureOf: () => boolean = () => false;
  const { config, service, lineage, auth, metrics, registry, featureLog, auditLog } = options;
  app.decorateRequest("principal", null);
  app.decorateRequest("audit", null);
  // JSON only: a text/plain body is refused as an unsupported media type (415), not parsed and
  // then refused as a bad body.
  app.removeContentTypeParser("text/plain");

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const protocol = "http";
    if (error instanceof ServeError) {
      if (error.kind === "unauthenticated") metrics.denied.inc({ protocol, reason: "unauthenticated" });
      if (error.kind === "forbidden") metrics.denied.inc({ protocol, reason: "forbidden" });
      if (error.kind === "limited") metrics.limited.inc({ protocol });
      if (error.retryAfterSeconds !== undefined) reply.header("retry-after", String(error.retryAfterSeconds));
      const statusCode = HTTP_STATUS[error.kind];
      return reply.code(statusCode).send({
        statusCode,
        error: error.kind,
        message: error.message,
        field: error.field,
        reason: error.reason?.code,
        view: error.reason?.view,
      });
    }
    if (error.validation) {
      const field = fieldOf(error);
      return reply.code(400).send({
        statusCode: 400,
        error: "invalid",
        message: `${field}: ${error.validation[0]?.message ?? error.message}`,
        field,
      });
    }
    const statusCode = error.statusCode ?? 500;
    if (statusCode >= 400 && statusCode < 500) {
      // Body parsing: malformed JSON, too large, wrong content type.
      const field = error.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE" ? "content-type" : "body";
      return reply
        .code(statusCode)
        .send({ statusCode, error: "invalid", message: `${field}: ${error.message}`, field });
    }
    request.log.error(error);
    auditLog.error({ err: error, url: request.url }, "request failed");
    return reply.code(statusCode).send({ statusCode, error: "internal", message: "internal error" });
  });

  await app.register(swagger, {
    openapi: {
      info: {
        title: "Tessera feature server",
        version: "1",
        description: "Feature vectors finalised at request time. See docs/api.md.",
      },
      components: {
        securitySchemes: {
          apiKey: { type: "apiKey", in: "header", name: "x-api-key" },
          bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" },
        },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });
  await app.register(opsRoutes, { registry, readiness: options.readiness });

  // The feature routes, with load shedding and authentication scoped to them (not to /healthz).
  await app.register(async (scope) => {
    const { reliability } = config;
    if (reliability.maxEventLoopDelayMs > 0 || reliability.maxHeapUsedBytes > 0) {
      await scope.register(underPressure, {
        maxEventLoopDelay: reliability.maxEventLoopDelayMs,
        maxHeapUsedBytes: reliability.maxHeapUsedBytes,
        retryAfter: reliability.retryAfterSeconds,
        pressureHandler: (_request, reply, type) => {
          metrics.shed.inc({ protocol: "http" });
          reply
            .code(503)
            .header("retry-after", String(reliability.retryAfterSeconds))
            .send({
              statusCode: 503,
              error: "unavailable",
              message: `server under pressure (${type}); retry later`,
            });
        },
      });
      underPressureOf = () => scope.isUnderPressure();
    }

    traceHttp(scope); // tracing: a span per request (nothing when tracing is off)
    // Hooks on every feature request take Fastify's callback form: an async hook costs a promise
    // and a microtask turn each.
    scope.addHook("onRequest", (request, _reply, done) => {
      try {
        request.principal = auth.admit({
          apiKey: request.headers["x-api-key"] as string | undefined,
          authorization: request.headers.authorization,
          address: request.ip,
        });
      } catch (error) {
        done(error as Error);
        return;
      }
      done();
    });
    scope.addHook("onResponse", (request, reply, done) => {
      const route = request.routeOptions.url ?? "unknown";
      metrics.requestDuration.observe(
        { protocol: "http", route, code: String(reply.statusCode) },
        reply.elapsedTime / 1000,
      );
      // The audit line: who, which views, how many entities, the outcome. Never values or secrets.
      auditLog.info({
        audit: true,
        protocol: "http",
        key: request.principal?.id ?? null,
        views: request.audit?.views ?? [],
        entities: request.audit?.entities ?? 0,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 100) / 100,
      });
      done();
    });

    const serve = async (request: FastifyRequest, reply: FastifyReply, body: FeatureRequest) => {
      request.audit = { views: service.viewsNamed(body.features), entities: 0 };
      request.audit.entities = checkRequest(body, config.limits);
      const response = await service.get(body, request.principal!);
      metrics.entities.inc({ protocol: "http" }, request.audit.entities);
      featureLog?.offer(response);
      // Set on success only: errors keep the error schema's serialiser.
      reply.type("application/json; charset=utf-8").serializer(featureResponseJson);
      return response;
    };

    scope.post(
      "/v1/features",
      {
        schema: {
          security: credentials,
          summary: "Feature vectors for a set of entities",
          description:
            "Windowed features finalised at request time (or at `at`, within the views' retention), with a status per value and per-view freshness.",
          body: {
            type: "object",
            additionalProperties: false,
            required: ["features", "entities"],
            properties: {
              features: {
                type: "array",
                minItems: 1,
                maxItems: config.limits.maxFeatures,
                items: { type: "string", minLength: 1, maxLength: 512 },
                description: '"view:feature" or "view:*"',
              },
              entities: {
                type: "object",
                minProperties: 1,
                description: "Entity key name → ids",
                additionalProperties: {
                  type: "array",
                  minItems: 1,
                  maxItems: config.limits.maxEntities,
                  items: ID,
                },
              },
              at: { type: "integer", minimum: 0, description: "Evaluate at this time (epoch ms)" },
              context: { type: "object", description: "Request context for on-demand features" },
            },
          },
          response: { 200: responseSchema, ...errorResponses },
        },
      },
      async (request, reply) => serve(request, reply, request.body as FeatureRequest),
    );

    scope.get(
      "/v1/features/:entityKey/:entityId",
      {
        schema: {
          security: credentials,
          summary: "Feature vector for one entity",
          params: {
            type: "object",
            required: ["entityKey", "entityId"],
            properties: { entityKey: { type: "string", minLength: 1 }, entityId: ID },
          },
          querystring: {
            type: "object",
            additionalProperties: false,
            required: ["features"],
            properties: {
              features: {
                type: "string",
                minLength: 1,
                description: 'Comma-separated "view:feature" or "view:*"',
              },
              at: {
                type: "string",
                pattern: "^[0-9]{1,16}$",
                description: "Evaluate at this time (epoch ms)",
              },
            },
          },
          response: { 200: responseSchema, ...errorResponses },
        },
      },
      async (request, reply) => {
        const { entityKey, entityId } = request.params as { entityKey: string; entityId: string };
        const query = request.query as { features: string; at?: string };
        const body: FeatureRequest = {
          features: query.features.split(",").map((f) => f.trim()),
          entities: { [entityKey]: [entityId] },
        };
        if (query.at !== undefined) body.at = Number(query.at);
        return serve(request, reply, body);
      },
    );

    const text = { type: "string", minLength: 1, maxLength: 256 } as const;
    const owned = {
      owner: { type: "string" },
      onCall: {
        type: "object",
        properties: {
          receiver: { type: "string" },
          labels: { type: "object", additionalProperties: { type: "string" } },
        },
      },
    } as const;
    scope.get(
      "/v1/lineage",
      {
        schema: {
          security: credentials,
          summary: "What serves a model or view, computed from what, since when",
          description:
            "model → views@version (serving since) → source topic → schema subject@version → archive location, and the model's reference profile and floors.",
          querystring: {
            type: "object",
            additionalProperties: false,
            properties: { model: text, view: text },
          },
          response: {
            200: {
              type: "object",
              properties: {
                kind: { type: "string", enum: ["model", "view"] },
                name: { type: "string" },
                model: {
                  type: ["object", "null"],
                  properties: {
                    name: { type: "string" },
                    ...owned,
                    accuracyFloor: { type: "number" },
                    aucFloor: { type: "number" },
                    freshnessMs: { type: "integer" },
                    reference: {
                      type: ["string", "null"],
                      description: "The reference profile drift is measured against",
                    },
                  },
                },
                views: {
                  type: "array",
                  items: {
                    type: "object",
                    properties: {
                      name: { type: "string" },
                      version: { type: "string" },
                      servingSince: {
                        type: "integer",
                        description: "Since when this server serves this version (epoch ms)",
                      },
                      ...owned,
                      freshness: {
                        type: ["object", "null"],
                        properties: {
                          maxAgeMs: { type: "integer" },
                          onStale: { type: "string" },
                          from: { type: "string" },
                        },
                      },
                      source: {
                        type: "object",
                        properties: {
                          name: { type: "string" },
                          topic: { type: "string" },
                          ...owned,
                          schema: {
                            type: "object",
                            properties: {
                              subject: { type: ["string", "null"] },
                              version: {
                                type: ["integer", "null"],
                                description: "Latest registered version (null: unknown)",
                              },
                              compatibility: { type: ["string", "null"] },
                            },
                          },
                          archive: { type: ["string", "null"] },
                        },
                      },
                    },
                  },
                },
              },
            },
            ...errorResponses,
          },
        },
      },
      async (request) => lineage.get(request.query as { model?: string; view?: string }, request.principal!),
    );
    if (options.gates)
      gateRoutes(scope, { ...options.gates, auditLog, security: credentials, errorResponses });
  });
  // Outside the authenticated scope: a wrong method is a 405 whoever asks.
  refuseOtherMethods(app, "/v1/features", ["POST"]);
  for (const url of ["/v1/features/:entityKey/:entityId", "/v1/lineage", "/metrics", "/healthz", "/readyz"]) {
    refuseOtherMethods(app, url, ["GET", "HEAD"]);
  }
  if (options.gates) {
    refuseOtherMethods(app, "/v1/gates", ["GET", "HEAD"]);
    for (const action of ["ack", "override", "release"])
      refuseOtherMethods(app, `/v1/gates/:subject/${action}`, ["POST"]);
  }

  // While draining, answers close their connection, so keep-alive clients cannot hold shutdown open.
  app.addHook("onSend", (_request, reply, payload, done) => {
    if (options.draining()) reply.header("connection", "close");
    done(null, payload);
  });

  for (const plugin of options.plugins) await app.register(plugin);
  return { underPressure: () => underPressureOf() };
}

/**
 * The operations endpoints every Tessera service exposes: Prometheus metrics, liveness, readiness.
 * A Fastify plugin, so a service with its own HTTP server (the feature server) mounts the same routes.
 */
import Fastify, { type FastifyInstance, type FastifyPluginAsync } from "fastify";
import { collectDefaultMetrics, type Registry } from "prom-client";

export interface Readiness {
  ready: boolean;
  /** Shown in the /readyz body: what is missing (e.g. "partitions not assigned", "lag 12000"). */
  detail?: Record<string, unknown>;
}

export interface OpsOptions {
  registry: Registry;
  /** Readiness: the service is assigned work and caught up. Liveness only needs the process to answer. */
  readiness: () => Readiness | Promise<Readiness>;
}

const statusSchema = {
  type: "object",
  properties: { status: { type: "string" }, detail: { type: "object", additionalProperties: true } },
} as const;

export const opsRoutes: FastifyPluginAsync<OpsOptions> = async (app, options) => {
  app.get("/metrics", async (_request, reply) => {
    reply.header("content-type", options.registry.contentType);
    return options.registry.metrics();
  });
  app.get(
    "/healthz",
    { schema: { description: "Liveness: the process answers.", response: { 200: statusSchema } } },
    async () => ({ status: "ok" }),
  );
  app.get(
    "/readyz",
    {
      schema: {
        description: "Readiness: assigned work and caught up.",
        response: { 200: statusSchema, 503: statusSchema },
      },
    },
    async (_request, reply) => {
      const readiness = await options.readiness();
      reply.code(readiness.ready ? 200 : 503);
      return { status: readiness.ready ? "ready" : "not ready", detail: readiness.detail ?? {} };
    },
  );
};

export interface OpsServer {
  app: FastifyInstance;
  url: string;
  close(): Promise<void>;
}

/** A small HTTP server with only the ops routes, for services that serve nothing else over HTTP. */
export async function startOpsServer(
  options: OpsOptions & { host?: string; port: number; defaultMetrics?: boolean },
): Promise<OpsServer> {
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: options.registry });
  const app = Fastify({ logger: false });
  await app.register(opsRoutes, options);
  const url = await app.listen({ host: options.host ?? "127.0.0.1", port: options.port });
  return { app, url, close: () => app.close() };
}

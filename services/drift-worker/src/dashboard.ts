/**
 * The on-call dashboard: one page with freshness and lag, drift per feature (reference vs current
 * histograms, statistics over time), the alerts timeline and model accuracy. Plain HTML + JS read
 * at start-up, uPlot for the time series: nothing for a user to build.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { FastifyPluginAsync } from "fastify";

const asset = (name: string) => readFileSync(new URL(`../dashboard/${name}`, import.meta.url), "utf8");
const uplotDir = createRequire(import.meta.url)
  .resolve("uplot/dist/uPlot.iife.min.js")
  .replace(/uPlot\.iife\.min\.js$/, "");

export interface DashboardOptions {
  /** The drift monitor's status (GET /v1/status shape), or null while there is none yet. */
  status: () => unknown | null;
  /** Mount point (default /dashboard). */
  prefix?: string;
}

export function dashboardPlugin(options: DashboardOptions): FastifyPluginAsync {
  const prefix = options.prefix ?? "/dashboard";
  const files: Record<string, { type: string; body: string }> = {
    "": { type: "text/html; charset=utf-8", body: asset("index.html").replaceAll("{{prefix}}", prefix) },
    "/app.js": { type: "text/javascript; charset=utf-8", body: asset("app.js") },
    "/style.css": { type: "text/css; charset=utf-8", body: asset("style.css") },
    "/uplot.js": {
      type: "text/javascript; charset=utf-8",
      body: readFileSync(`${uplotDir}uPlot.iife.min.js`, "utf8"),
    },
    "/uplot.css": { type: "text/css; charset=utf-8", body: readFileSync(`${uplotDir}uPlot.min.css`, "utf8") },
  };
  return async (app) => {
    for (const [path, file] of Object.entries(files)) {
      app.get(`${prefix}${path}`, { schema: { hide: true } as object }, async (_request, reply) =>
        reply.type(file.type).header("cache-control", "no-cache").send(file.body),
      );
    }
    app.get(`${prefix}/status.json`, { schema: { hide: true } as object }, async (_request, reply) => {
      const status = options.status();
      if (status === null) {
        return reply.code(503).send({ status: "warming up", detail: "no reference profile yet" });
      }
      return reply.header("cache-control", "no-store").send(status);
    });
  };
}

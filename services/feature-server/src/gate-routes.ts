/**
 * The quality gate's operator API over HTTP, beside `tessera gate`: see the gates, acknowledge a
 * trip, override it for a bounded time, release it. Reads need credentials and show only the gates
 * covering views the caller may read; actions need a key (or token) with the `gate` right. The actor
 * recorded on the gate topic is the authenticated principal, never a name the caller types, and
 * each action gets an audit line. Mounted only where this server writes the gate topic (gate.follow).
 */
import type { GatePublisher } from "@tessera/kafka";
import type { Logger } from "@tessera/runtime";
import {
  type Definitions,
  GateError,
  type GateState,
  parseDuration,
  parseGateSubject,
} from "@tessera/transforms";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { invalid, ServeError } from "./errors.js";
import type { Principal } from "./serve.js";

export type GateOperator = Pick<GatePublisher, "status" | "ack" | "override" | "release">;

export interface GateRouteOptions {
  operator: GateOperator;
  definitions: Definitions;
  auditLog: Logger;
  /** OpenAPI security and error responses shared with the other routes. */
  security: Array<Record<string, string[]>>;
  errorResponses: Record<number, object>;
}

const text = { type: "string", minLength: 1, maxLength: 256 } as const;

const gateSchema = {
  type: "object",
  properties: {
    subject: { type: "string" },
    state: { type: "string", enum: ["ok", "tripped", "acked", "overridden"] },
    causes: { type: "array", items: { type: "string" } },
    since: { type: "integer" },
    clearingSince: { type: "integer" },
    overrideUntil: { type: "integer" },
    incident: { type: "string" },
    by: { type: "string" },
    at: { type: "integer" },
    note: { type: "string" },
    log: {
      type: "array",
      items: {
        type: "object",
        properties: {
          action: { type: "string" },
          by: { type: "string" },
          at: { type: "integer" },
          note: { type: "string" },
          cause: { type: "string" },
          until: { type: "integer" },
        },
      },
    },
  },
} as const;

export function gateRoutes(scope: FastifyInstance, options: GateRouteOptions): void {
  const { operator, definitions, auditLog } = options;

  /** The views a gate covers: its own, or each view of its model. */
  const viewsOf = (subject: string): string[] => {
    const { kind, name } = parseGateSubject(subject);
    if (kind === "view") return [name];
    return definitions.models.find((m) => m.name === name)?.views ?? [];
  };
  const mayRead = (principal: Principal, subject: string) =>
    principal.views === "*" || viewsOf(subject).every((v) => (principal.views as ReadonlySet<string>).has(v));

  scope.get(
    "/v1/gates",
    {
      schema: {
        security: options.security,
        summary: "Quality gates that are not ok",
        description: "Each tripped, acknowledged or overridden gate covering views this caller may read.",
        response: {
          200: { type: "object", properties: { gates: { type: "array", items: gateSchema } } },
          ...options.errorResponses,
        },
      },
    },
    async (request) => ({
      gates: operator.status().filter((g) => mayRead(request.principal!, g.subject)),
    }),
  );

  const act = (
    action: "ack" | "override" | "release",
    summary: string,
    run: (subject: string, by: string, body: { reason: string; for?: string }) => Promise<GateState>,
  ) =>
    scope.post(
      `/v1/gates/:subject/${action}`,
      {
        schema: {
          security: options.security,
          summary,
          description:
            "Needs a key or token with the `gate` right; recorded on the gate topic with the caller's identity and reason.",
          params: {
            type: "object",
            required: ["subject"],
            properties: { subject: { ...text, description: "view:<name> or model:<name>" } },
          },
          body: {
            type: "object",
            required: ["reason", ...(action === "override" ? ["for"] : [])],
            additionalProperties: false,
            properties: {
              reason: { ...text, description: "Why (audited)" },
              ...(action === "override"
                ? { for: { ...text, description: "How long, e.g. 30m (bounded by the gate's maximum)" } }
                : {}),
            },
          },
          response: { 200: gateSchema, ...options.errorResponses },
        },
      },
      async (request: FastifyRequest) => {
        const principal = request.principal!;
        if (!principal.rights?.has("gate"))
          throw new ServeError("forbidden", `key ${principal.id} has no \`gate\` right`, "x-api-key");
        const { subject } = request.params as { subject: string };
        const body = request.body as { reason: string; for?: string };
        try {
          if (!mayRead(principal, subject))
            throw new ServeError(
              "forbidden",
              `key ${principal.id} may not read every view ${subject} covers`,
              "subject",
            );
          const state = await run(subject, principal.id, body);
          auditLog.info({
            audit: true,
            gate: { action, subject, by: principal.id, reason: body.reason, for: body.for },
          });
          return state;
        } catch (error) {
          if (error instanceof GateError)
            throw invalid(error.field === "note" ? "reason" : error.field, error.message);
          throw error;
        }
      },
    );

  act("ack", "Acknowledge a tripped gate (it stays tripped; its alerts stop paging)", (subject, by, body) =>
    operator.ack(subject, { by, at: Date.now(), note: body.reason }),
  );
  act("override", "Serve a tripped gate's views normally for a bounded time", (subject, by, body) => {
    const forMs = parseDuration(body.for!);
    if (forMs === undefined)
      throw invalid("for", `${JSON.stringify(body.for)} is not a duration such as 30m`);
    return operator.override(subject, { by, at: Date.now(), note: body.reason, forMs });
  });
  act("release", "Release a gate (back to ok)", (subject, by, body) =>
    operator.release(subject, { by, at: Date.now(), note: body.reason }),
  );
}

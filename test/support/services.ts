/**
 * Where integration tests find Kafka, the schema registry, Redis and Cassandra.
 *
 * Order, per service: an environment variable the user set; else a container when a Docker
 * engine answers; else the native stack (scripts/stack). Nothing is ever skipped: if none can be
 * had, the run fails with what is missing and how to get it.
 */
import { existsSync } from "node:fs";
import { request } from "node:http";
import type { SingleServiceName as ServiceName } from "../../scripts/stack/config.js";

export interface ServiceEndpoints {
  KAFKA_BROKERS: string;
  SCHEMA_REGISTRY_URL: string;
  REDIS_URL: string;
  CASSANDRA_CONTACT_POINTS: string;
  CASSANDRA_LOCAL_DC: string;
}

export const envVarOf: Record<ServiceName, keyof ServiceEndpoints> = {
  kafka: "KAFKA_BROKERS",
  registry: "SCHEMA_REGISTRY_URL",
  redis: "REDIS_URL",
  cassandra: "CASSANDRA_CONTACT_POINTS",
};

export interface Provisioned {
  endpoints: ServiceEndpoints;
  /** How each service was obtained, printed once at the start of the run. */
  sources: Record<ServiceName, "env" | "container" | "native stack">;
  stop(): Promise<void>;
}

/** Does a Docker engine answer on its socket? (`docker --version` alone is only the client.) */
export function dockerEngineAnswers(socketPath = "/var/run/docker.sock"): Promise<boolean> {
  if (process.env["DOCKER_HOST"] === undefined && !existsSync(socketPath)) return Promise.resolve(false);
  return new Promise((resolvePromise) => {
    const req = request({ socketPath, path: "/_ping", timeout: 1500 }, (res) => {
      res.resume();
      resolvePromise(res.statusCode === 200);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolvePromise(false));
    req.end();
  });
}

export class ServicesUnavailableError extends Error {
  override name = "ServicesUnavailableError";
}

export async function provisionServices(log: (line: string) => void = console.log): Promise<Provisioned> {
  const fromEnv = (Object.keys(envVarOf) as ServiceName[]).filter((name) => process.env[envVarOf[name]]);
  const missing = (Object.keys(envVarOf) as ServiceName[]).filter((name) => !fromEnv.includes(name));
  const sources = Object.fromEntries(fromEnv.map((name) => [name, "env"])) as Provisioned["sources"];
  const endpoints: Partial<ServiceEndpoints> = {
    CASSANDRA_LOCAL_DC: process.env["CASSANDRA_LOCAL_DC"] || "datacenter1",
  };
  for (const name of fromEnv) endpoints[envVarOf[name]] = process.env[envVarOf[name]]!;
  const stops: Array<() => Promise<void>> = [];

  if (missing.length > 0 && (await dockerEngineAnswers())) {
    const { startContainers } = await import("./containers.js");
    const started = await startContainers(missing, log);
    Object.assign(endpoints, started.endpoints);
    for (const name of missing) sources[name] = "container";
    stops.push(started.stop);
  } else if (missing.length > 0) {
    const stack = await import("../../scripts/stack/stack.js");
    let result: Awaited<ReturnType<typeof stack.up>>;
    try {
      result = await stack.up(missing, log);
    } catch (error) {
      throw new ServicesUnavailableError(
        `Integration tests need ${missing.join(", ")}, and none could be had:\n` +
          `- no ${missing.map((n) => envVarOf[n]).join("/")} in the environment,\n` +
          `- no Docker engine answering for testcontainers,\n` +
          `- the native stack failed to start: ${(error as Error).message}\n` +
          "Fix: install Java 17, Maven and redis-server (apt-get install -y openjdk-17-jre-headless maven redis-server) " +
          "and run `npm run stack:up`, or point the variables above at running services.",
      );
    }
    for (const name of missing) {
      endpoints[envVarOf[name]] = result.env[envVarOf[name]]!;
      sources[name] = "native stack";
    }
    // Stop only what this run started; a stack the user had running stays up.
    if (result.started.length > 0 && process.env["TESSERA_KEEP_STACK"] !== "1") {
      stops.push(() => stack.down(result.started, log));
    }
  }
  return {
    endpoints: endpoints as ServiceEndpoints,
    sources,
    stop: async () => {
      for (const stop of stops) await stop();
    },
  };
}

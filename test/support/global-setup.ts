import type { TestProject } from "vitest/node";
import { clusterNames } from "../../scripts/stack/config.js";
import { provisionServices, type ServiceEndpoints } from "./services.js";

declare module "vitest" {
  export interface ProvidedContext {
    services: ServiceEndpoints;
  }
}

/** Runs once per `vitest run` of the integration project: provision, hand out, tear down. */
export default async function setup(project: TestProject) {
  const provisioned = await provisionServices((line) => console.log(line));
  const summary = Object.entries(provisioned.sources)
    .map(([name, source]) => `${name}: ${source}`)
    .join(", ");
  console.log(`test services (${summary})`);
  project.provide("services", provisioned.endpoints);
  // Child processes started by tests (processor, archiver) read the same variables.
  Object.assign(process.env, provisioned.endpoints);
  // Clusters start lazily in the test files that need them (support/clusters.ts); those this run
  // started are stopped at its end, those that ran before stay.
  const stack = await import("../../scripts/stack/stack.js");
  const before = clusterNames.filter(stack.isRunning);
  return async () => {
    await provisioned.stop();
    const started = clusterNames.filter((name) => stack.isRunning(name) && !before.includes(name));
    if (started.length > 0 && process.env["TESSERA_KEEP_STACK"] !== "1") await stack.down(started);
  };
}

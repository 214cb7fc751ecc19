import type { TestProject } from "vitest/node";
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
  return () => provisioned.stop();
}

import { defineConfig } from "vitest/config";

// Workspace packages export "@tessera/source" → src/*.ts, so tests run the TypeScript directly.
// The rest are Vite's SSR defaults.
export default defineConfig({
  ssr: { resolve: { conditions: ["@tessera/source", "node", "development|production"] } },
  test: {
    reporters: ["default", "./test/support/summary-reporter.ts"],
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["libs/*/test/**/*.test.ts", "services/*/test/**/*.test.ts"],
          exclude: ["**/*.int.test.ts", "**/node_modules/**"],
        },
      },
      {
        extends: true,
        test: {
          name: "integration",
          include: ["test/**/*.test.ts", "libs/*/test/**/*.int.test.ts", "services/*/test/**/*.int.test.ts"],
          exclude: ["**/node_modules/**"],
          globalSetup: ["test/support/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 240_000,
          // One shared broker, registry, Redis and Cassandra: files run one after another.
          fileParallelism: false,
        },
      },
    ],
  },
});

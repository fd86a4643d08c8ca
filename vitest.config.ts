import { defaultServerConditions } from "vite";
import { defineConfig } from "vitest/config";

// Tests import workspace packages from source through the "@quorate/source" export condition,
// so a unit run needs no build. Integration tests spawn the built CLI, so `pnpm test` builds first.
// Without "module": @opentelemetry packages map it to an ESM build with extensionless imports
// that Node cannot load. Resolve them as Node itself does.
const conditions = ["@quorate/source", ...defaultServerConditions.filter((c) => c !== "module")];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["packages/*/test/**/*.test.ts", "test/unit/**/*.test.ts"],
          testTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          globalSetup: ["test/harness/global-setup.ts"],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          // Containers and node processes are heavy on a 2-core machine: one file at a time.
          fileParallelism: false,
        },
      },
      {
        extends: true,
        test: {
          // deploy/compose.yaml brought up whole (3 minutes): a command of its own, `pnpm test:compose`.
          name: "compose",
          include: ["test/compose/**/*.test.ts"],
          globalSetup: ["test/harness/global-setup.ts"],
          testTimeout: 600_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
    ],
  },
});

import type { Reporter, TestModule } from "vitest/node";

/**
 * One plain closing line after vitest's own summary: `tests: N passed, N failed` (plus skipped).
 * CI readers look for that line; vitest's boxed summary is not one they know, and a child tool's
 * output echoed by a test (a pytest-style "1 warning in 8s") could otherwise be read as the run's.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const counts = { passed: 0, failed: 0, skipped: 0 };
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === "passed") counts.passed++;
        else if (state === "failed") counts.failed++;
        else counts.skipped++;
      }
      // A file that failed to load has no tests to count but is a failure all the same.
      if (module.state() === "failed" && ![...module.children.allTests()].length) counts.failed++;
    }
    const skipped = counts.skipped ? `, ${counts.skipped} skipped` : "";
    process.stdout.write(`\ntests: ${counts.passed} passed, ${counts.failed} failed${skipped}\n`);
  }
}

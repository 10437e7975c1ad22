import { defineConfig } from 'vitest/config';

// Two projects: `unit` (pure logic, no services, fully parallel) and `integration` (`*.int.test.ts`, real
// PostgreSQL/Kafka/Redis from test/global-setup.ts). Integration files run two at a time: the machine has two
// cores and Kafka is heavy. Distinct groupOrder values are required for projects with different maxWorkers;
// unit runs first so a broken pure function fails fast.
const exclude = ['**/node_modules/**', '**/.riskmon/**', '**/dist/**', '**/test-artifacts/**'];

export default defineConfig({
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['**/*.test.ts'],
          exclude: [...exclude, '**/*.int.test.ts'],
          // Pure, but some check a fast path against the plain one over thousands of inputs: seconds on a busy machine.
          testTimeout: 60_000,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['**/*.int.test.ts'],
          exclude,
          globalSetup: ['test/global-setup.ts'],
          pool: 'forks',
          maxWorkers: Number(process.env.RISKMON_TEST_WORKERS ?? 2),
          testTimeout: 120_000,
          hookTimeout: 300_000,
          teardownTimeout: 60_000,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});

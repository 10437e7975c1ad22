/**
 * vitest globalSetup of the `integration` project: real PostgreSQL, Kafka and Redis for the tests.
 *
 * - PG_URL, RISK_PG_URL, KAFKA_BROKERS and REDIS_URL all set: those services are used as they are.
 * - otherwise a stack is started (or joined) in `.riskmon/test-stack` (RISKMON_TEST_STACK_DIR), separate from
 *   the development stack; services named in the environment are still taken from it.
 *
 * The URLs reach the tests twice: `project.provide()` (read with `inject()`), and process.env, which the forked
 * test workers inherit because they are spawned after this runs. Tests isolate themselves with
 * test/helpers/services.ts (a database, topic, group, slot or key prefix of their own), so a stack can be shared by
 * parallel runs: each run registers as a holder and the last one to finish stops it
 * (RISKMON_TEST_KEEP_STACK=1 keeps it running for the next run).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { releaseStack, stackUp, type StackEnv } from '../scripts/stack-lib.ts';
import { resetServices } from './helpers/services.ts';

const KEYS = ['PG_URL', 'RISK_PG_URL', 'KAFKA_BROKERS', 'REDIS_URL'] as const;
const REPO_ROOT = path.resolve(fileURLToPath(new URL('..', import.meta.url)));

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const log = (line: string) => console.log(`[test-stack] ${line}`);
  let env: StackEnv;
  let dir = '';
  if (KEYS.every((k) => process.env[k])) {
    env = { PG_URL: process.env.PG_URL!, RISK_PG_URL: process.env.RISK_PG_URL!, KAFKA_BROKERS: process.env.KAFKA_BROKERS!, REDIS_URL: process.env.REDIS_URL! };
    log('using PG_URL, RISK_PG_URL, KAFKA_BROKERS, REDIS_URL from the environment');
  } else {
    dir = path.resolve(process.env.RISKMON_TEST_STACK_DIR ?? path.join(REPO_ROOT, '.riskmon', 'test-stack'));
    const anyExternal = KEYS.some((k) => process.env[k]);
    const t0 = Date.now();
    env = await stackUp({
      dir,
      holder: process.pid,
      log,
      // Leftovers of earlier runs (databases, slots, topics, keys) go, unless another run is using the stack now.
      whileLocked: async (urls, others) => {
        if (!anyExternal && others.length === 0) await resetServices(urls);
      },
    });
    log(`ready in ${((Date.now() - t0) / 1000).toFixed(1)}s (${dir})`);
  }
  for (const k of KEYS) {
    process.env[k] = env[k];
    project.provide(k, env[k]);
  }
  process.env.RISKMON_TEST_STACK_DIR = dir;
  project.provide('RISKMON_TEST_STACK_DIR', dir);
  if (!dir) return undefined;
  return async () => {
    const keep = process.env.RISKMON_TEST_KEEP_STACK === '1';
    if (await releaseStack(dir, process.pid, { keep, log })) log('stopped');
  };
}

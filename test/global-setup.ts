/**
 * vitest globalSetup of the `integration` project: real PostgreSQL, Kafka and Redis for the tests.
 *
 * - PG_URL, RISK_PG_URL, KAFKA_BROKERS and REDIS_URL all set: those services are used as they are.
 * - otherwise, where a Docker engine answers, as containers through testcontainers (test/harness/containers.ts;
 *   official images, or the RISKMON_*_IMAGE ones), removed at the end;
 * - otherwise (or with RISKMON_TEST_SERVICES=native) a stack is started (or joined) by the native launcher in
 *   `.riskmon/test-stack` (RISKMON_TEST_STACK_DIR), separate from the development stack; services named in the
 *   environment are still taken from it. RISKMON_TEST_SERVICES=containers insists on containers.
 *
 * The URLs reach the tests twice: `project.provide()` (read with `inject()`), and process.env, which the forked
 * test workers inherit because they are spawned after this runs. Tests isolate themselves with
 * test/harness/services.ts (a database, topic, group, slot or key prefix of their own), so a stack can be shared by
 * parallel runs: each run registers as a holder and the last one to finish stops it
 * (RISKMON_TEST_KEEP_STACK=1 keeps it running for the next run).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { probeDocker } from '../scripts/images-lib.ts';
import type { ContainerStack } from './harness/containers.ts';
import { releaseStack, stackUp, type StackEnv } from '../scripts/stack/index.ts';
import { resetServices } from './harness/services.ts';

const KEYS = ['PG_URL', 'RISK_PG_URL', 'KAFKA_BROKERS', 'REDIS_URL'] as const;
const REPO_ROOT = path.resolve(fileURLToPath(new URL('..', import.meta.url)));

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const log = (line: string) => console.log(`[test-stack] ${line}`);
  let env: StackEnv;
  let dir = '';
  let stopContainers: (() => Promise<void>) | null = null;
  const backend = KEYS.every((k) => process.env[k]) ? 'environment' : servicesBackend(log);
  let containers: ContainerStack | null = null;
  if (backend === 'containers' || backend === 'auto-containers') {
    const t0 = Date.now();
    const { startContainers } = await import('./harness/containers.ts');
    try {
      containers = await startContainers(log);
      log(`containers ready in ${((Date.now() - t0) / 1000).toFixed(1)}s: ${containers.containers.map((c) => `${c.service}=${c.image}`).join(' ')}`);
    } catch (err) {
      if (backend === 'containers') throw err;
      log(`${(err as Error).message}\nservices: falling back to the native launcher`);
    }
  }
  if (backend === 'environment') {
    env = { PG_URL: process.env.PG_URL!, RISK_PG_URL: process.env.RISK_PG_URL!, KAFKA_BROKERS: process.env.KAFKA_BROKERS!, REDIS_URL: process.env.REDIS_URL! };
    log('using PG_URL, RISK_PG_URL, KAFKA_BROKERS, REDIS_URL from the environment');
  } else if (containers) {
    env = containers.env;
    stopContainers = containers.stop;
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
  if (stopContainers) {
    const stop = stopContainers;
    return async () => { await stop(); log('containers removed'); };
  }
  if (!dir) return undefined;
  return async () => {
    const keep = process.env.RISKMON_TEST_KEEP_STACK === '1';
    if (await releaseStack(dir, process.pid, { keep, log })) log('stopped');
  };
}

/**
 * Containers or the native launcher (RISKMON_TEST_SERVICES = auto | containers | native; auto: containers when a
 * Docker engine answers, falling back to the native launcher when they cannot start, e.g. no registry to pull the
 * images from). The choice and its reason are printed, so a run says which path it took.
 */
function servicesBackend(log: (line: string) => void): 'containers' | 'auto-containers' | 'native' {
  const want = process.env.RISKMON_TEST_SERVICES ?? 'auto';
  if (want !== 'auto' && want !== 'containers' && want !== 'native') throw new Error(`RISKMON_TEST_SERVICES must be auto, containers or native, not "${want}"`);
  if (want === 'native') { log('services: native launcher (RISKMON_TEST_SERVICES=native)'); return 'native'; }
  const docker = probeDocker();
  if (docker.ok) { log(`services: containers (Docker engine ${docker.version})`); return want === 'containers' ? 'containers' : 'auto-containers'; }
  if (want === 'containers') throw new Error(`RISKMON_TEST_SERVICES=containers, but ${docker.reason}`);
  log(`services: native launcher (${docker.reason})`);
  return 'native';
}

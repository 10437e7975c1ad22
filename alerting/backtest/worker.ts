/**
 * The backtest thread's entry (started by thread.ts with `new Worker`): the alerting configuration read again from
 * the environment it was given, connections of its own (Redis, the risk store, the source directory, Kafka for
 * minutes older than the minute tier), and one `BacktestRunner`. It yields to the live evaluator through a flag in
 * shared memory the evaluator sets while a closed minute is due or in progress, and tells the parent which job it
 * runs, so a job it died of (out of memory) is failed by the parent instead of taken again.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { TopicMinutes } from '../../aggregator/index.ts';
import { createBucketReader, settlementOf } from '../../aggregator/store/index.ts';
import { clockOf } from '../../lib/clock.ts';
import { readConfig } from '../../lib/config.ts';
import { createKafka } from '../../lib/kafka/index.ts';
import { componentLogger } from '../../lib/logger.ts';
import { createPool } from '../../lib/pg.ts';
import { createRedis } from '../../lib/redis.ts';
import { alertingSpec } from '../config.ts';
import { sourceDirectory } from '../directory.ts';
import { BacktestRunner } from './jobs.ts';
import type { FromWorker, WorkerInput } from './thread.ts';

const input = workerData as WorkerInput;
const port = parentPort!;
const cfg = readConfig(alertingSpec, input.env);
const log = componentLogger('alerting').child({ service: 'backtests', thread: 'backtest' });
const live = new Int32Array(input.liveBusy);
const send = (m: FromWorker) => port.postMessage(m);

const redis = createRedis(cfg, { maxRetriesPerRequest: null, connectionName: 'riskmon-backtests' });
const reader = createBucketReader(redis, { prefix: cfg.redisPrefix, partitions: cfg.partitions, hotShards: cfg.hotShards, tz: cfg.tz, now: clockOf(cfg.clock) });
const db = createPool({ connectionString: cfg.riskPgUrl, max: 2, application_name: 'riskmon-backtests' }, log);
const sourceDb = cfg.pgUrl ? createPool({ connectionString: cfg.pgUrl, max: 1, application_name: 'riskmon-backtests-directory' }, log) : null;
const runner = new BacktestRunner(
  // as alerting/index.ts builds the in-thread runner
  { tz: cfg.tz, maxIngestLagMs: cfg.maxIngestLagMs, evaluatorName: cfg.evaluatorName, pollMs: input.pollMs, settlement: settlementOf(cfg) },
  {
    reader, db, log, directory: sourceDb ? sourceDirectory(sourceDb, cfg.mapping) : undefined,
    liveBusy: () => Atomics.load(live, 0) !== 0,
    onJob: (id) => send({ job: id }),
    topicMinutes: cfg.kafkaBrokers.length
      ? (lo, hi) => TopicMinutes.open({ kafka: createKafka(cfg, { clientId: 'riskmon-backtest' }), topic: cfg.topic, mapping: cfg.mapping }, lo, hi)
      : undefined,
  },
);
port.on('message', (m: unknown) => { if (m === 'stop') void runner.stop(); });
send({ started: true });
log.info({ heapMb: input.heapMb }, 'backtest thread started');
try {
  await runner.run();
} finally {
  await db.end().catch(() => {});
  await sourceDb?.end().catch(() => {});
  redis.disconnect();
  port.close();
}

/** Prometheus metrics of the aggregator (registered once per process on lib/metrics.ts' registry). */
import { masters, type RedisClient } from '../lib/redis.ts';
import { Counter, Gauge, Histogram } from 'prom-client';
import { registry } from '../lib/metrics.ts';
import { withTimeout } from '../lib/timeout.ts';

const LATENCY_BUCKETS = [0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30];

let redisForMemory: RedisClient | null = null;

function once<T>(name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

export const metrics = {
  backfillRows: once('riskmon_backfill_rows_total', () => new Counter({
    name: 'riskmon_backfill_rows_total', help: 'source rows taken in by history backfills (the cdc\'s first start, riskmon backfill)', registers: [registry],
  })),
  backfillProgress: once('riskmon_backfill_progress', () => new Gauge({
    name: 'riskmon_backfill_progress', help: 'share of the running backfill\'s time chunks done (0..1; 1 when none runs)', registers: [registry],
  })),
  backfillRunning: once('riskmon_backfill_running', () => new Gauge({
    name: 'riskmon_backfill_running', help: '1 while this process runs a history backfill', registers: [registry],
  })),
  changes: once('riskmon_aggregator_changes_total', () => new Counter({
    name: 'riskmon_aggregator_changes_total', help: 'row changes applied to the buckets (rate = changes/s)', registers: [registry],
  })),
  late: once('riskmon_aggregator_late_rows_total', () => new Counter({
    name: 'riskmon_aggregator_late_rows_total', help: 'facts whose minute was already closed (watermark past minute + 60 s + allowed lateness) when applied', registers: [registry],
  })),
  dlq: once('riskmon_aggregator_dead_letters_total', () => new Counter({
    name: 'riskmon_aggregator_dead_letters_total', help: 'messages sent to the dead-letter topic', labelNames: ['kind'], registers: [registry],
  })),
  applySeconds: once('riskmon_aggregator_apply_seconds', () => new Histogram({
    name: 'riskmon_aggregator_apply_seconds', help: 'latency of one atomic Redis apply (plan + Lua)',
    buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2], registers: [registry],
  })),
  // From a record's timestamp (the cdc's produce time, written by lib/kafka/record-batch.ts) on this host's clock:
  // the Kafka → bucket share of commit → bucket, for the oldest record of each batch / chunk.
  receiveLatency: once('riskmon_aggregator_receive_latency_seconds', () => new Histogram({
    name: 'riskmon_aggregator_receive_latency_seconds', help: 'record produced to its batch handed to the aggregator (append, fetch wait, fetch, queue behind other partitions)',
    buckets: LATENCY_BUCKETS, registers: [registry],
  })),
  appliedLatency: once('riskmon_aggregator_applied_latency_seconds', () => new Histogram({
    name: 'riskmon_aggregator_applied_latency_seconds', help: 'record produced to its chunk applied in Redis (the Kafka → bucket latency)',
    buckets: LATENCY_BUCKETS, registers: [registry],
  })),
  lag: once('riskmon_aggregator_consumer_lag', () => new Gauge({
    name: 'riskmon_aggregator_consumer_lag', help: 'messages behind the partition high watermark', labelNames: ['partition'], registers: [registry],
  })),
  restarts: once('riskmon_aggregator_session_restarts_total', () => new Counter({
    name: 'riskmon_aggregator_session_restarts_total', help: 'consumer sessions ended by a broker outage or consumer crash and resumed (after backoff)', registers: [registry],
  })),
  rollbacks: once('riskmon_aggregator_redis_rollbacks_total', () => new Counter({
    name: 'riskmon_aggregator_redis_rollbacks_total', help: 'applies refused because Redis held an older offset than this process applied (failover to a lagging replica, replay); re-consumed', registers: [registry],
  })),
  duplicates: once('riskmon_aggregator_skipped_duplicates_total', () => new Counter({
    name: 'riskmon_aggregator_skipped_duplicates_total', help: 'messages skipped because their offset was already applied', registers: [registry],
  })),
  redisMemory: once('riskmon_redis_used_memory_bytes', () => new Gauge({
    name: 'riskmon_redis_used_memory_bytes', help: 'Redis used_memory (INFO memory)', registers: [registry],
    async collect() {
      if (!redisForMemory) return;
      // a cluster's memory is the sum over its masters. A node not connected is not asked: the client queues
      // commands while Redis is down, and a scrape would wait (and queue one more INFO) until it is back.
      const nodes = masters(redisForMemory);
      if (!nodes.every((n) => n.status === 'ready')) return;
      let total = 0;
      for (const node of nodes) {
        const m = /used_memory:(\d+)/.exec(await withTimeout(node.info('memory'), 2_000, () => new Error('INFO memory not answered')).catch(() => ''));
        if (!m) return;
        total += Number(m[1]);
      }
      this.set(total);
    },
  })),
};

export function watchRedisMemory(redis: RedisClient): void {
  redisForMemory = redis;
}

/** `riskmon status [--json]`: the pipeline status as a table (or JSON), from the same code as GET /api/status. */
import type { Admin } from 'kafkajs';
import { createRedis } from '../lib/redis.ts';
import { clockOf } from '../lib/clock.ts';
import pg from 'pg';
import { parseFlags, UsageError, wantsHelp } from '../lib/args.ts';
import { commonSpec, connections, readConfig } from '../lib/config.ts';
import { createBucketReader } from '../aggregator/store/index.ts';
import { formatStatus, pipelineStatus } from './status.ts';
import { createKafka } from '../lib/kafka/index.ts';

export async function main(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const usage = 'usage: riskmon status [--json]\n  slot lag, consumer lag, watermark and last closed minute of the pipeline\n';
  if (wantsHelp(args)) { process.stdout.write(usage); return 0; }
  let json: boolean;
  try {
    json = parseFlags('status', args, { json: { kind: 'bool', help: 'print JSON' } }).json === true;
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`riskmon status: ${err.message}\n${usage}`);
    return 2;
  }
  const cfg = readConfig({ ...connections('pgUrl', 'riskPgUrl', 'kafkaBrokers', 'redisUrl'), ...commonSpec }, env);
  const sourcePg = new pg.Client({ connectionString: cfg.pgUrl, application_name: 'riskmon-status' });
  const riskPg = new pg.Client({ connectionString: cfg.riskPgUrl, application_name: 'riskmon-status' });
  const redis = createRedis(cfg, { maxRetriesPerRequest: 1, lazyConnect: true, connectionName: 'riskmon-status' });
  let admin: Admin | null = null;
  try {
    await Promise.allSettled([sourcePg.connect(), riskPg.connect(), redis.connect()]);
    const st = await pipelineStatus({
      sourcePg, riskPg, reader: createBucketReader(redis, { prefix: cfg.redisPrefix, partitions: cfg.partitions, hotShards: cfg.hotShards, tz: cfg.tz }), slot: cfg.slot, group: cfg.group, topic: cfg.topic,
      kafkaAdmin: async () => {
        admin = createKafka(cfg, { clientId: 'riskmon-status', retries: 1 }).admin();
        await admin.connect();
        return admin;
      },
    }, clockOf(cfg.clock)());
    process.stdout.write(json ? `${JSON.stringify(st, null, 2)}\n` : formatStatus(st));
    return st.slot.error || st.consumer.error || st.watermark.error || st.evaluator.error ? 1 : 0;
  } finally {
    await Promise.allSettled([sourcePg.end(), riskPg.end(), redis.quit(), (admin as Admin | null)?.disconnect()]);
  }
}

/** `riskmon replay --from-lsn <LSN> [--force]`: rebuild the buckets from the retained topic (replay.ts). */
import { createRedis, verifyRedis } from '../lib/redis.ts';
import { createKafka, LsnInFutureError, LsnTooOldError, verifyKafka } from '../lib/kafka/index.ts';
import { parseFlags, required, UsageError, wantsHelp } from '../lib/args.ts';
import { processClock } from '../lib/clock.ts';
import { readConfig } from '../lib/config.ts';
import { componentLogger } from '../lib/logger.ts';
import { LsnError } from '../lib/lsn.ts';
import { aggregatorSpec } from './config.ts';
import { replay, ReplayLockedError } from './replay.ts';

const USAGE = 'usage: riskmon replay --from-lsn <LSN> [--force]\n' +
  '  Rebuilds the Redis buckets from the retained change topic, from the earliest bucket touched by changes at or\n' +
  '  after <LSN> (e.g. 0/16B3748). Running aggregators pause meanwhile. --force takes over the lock of an\n' +
  '  interrupted replay.\n';

export async function main(args: string[]): Promise<number> {
  const code = await run(args);
  // kafkajs' low-level cluster connections used for offset lookups can outlive their disconnect(); a one-shot
  // command must not hang on them, so exit shortly after finishing (unref'd: no delay when nothing lingers).
  setTimeout(() => process.exit(code), 2000).unref();
  return code;
}

async function run(args: string[]): Promise<number> {
  if (wantsHelp(args)) { process.stdout.write(USAGE); return 0; }
  let fromLsn: string, force: boolean;
  try {
    const flags = parseFlags('replay', args, { 'from-lsn': { kind: 'str', help: 'an LSN such as 0/16B3748' }, force: { kind: 'bool', help: 'take over the lock' } });
    fromLsn = required<string>('replay', flags, 'from-lsn', 'an LSN such as 0/16B3748');
    force = flags.force === true;
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`riskmon replay: ${err.message}\n${USAGE}`);
    return 2;
  }
  const cfg = readConfig(aggregatorSpec);
  const log = componentLogger('replay');
  const kafka = createKafka(cfg, { clientId: 'riskmon-replay' });
  await verifyRedis(cfg);
  await verifyKafka(cfg);
  const redis = createRedis(cfg, { maxRetriesPerRequest: 3, connectionName: 'riskmon-replay' });
  try {
    const r = await replay({ kafka, redis, cfg, log, fromLsn, force, now: processClock(cfg.clock, log) });
    process.stdout.write(`${JSON.stringify({
      ...r, resetFrom: r.resetFrom === null ? null : new Date(r.resetFrom).toISOString(),
      clampedFrom: r.clampedFrom === null ? null : new Date(r.clampedFrom).toISOString(),
    })}\n`);
    return 0;
  } catch (err) {
    if (err instanceof LsnError || err instanceof LsnTooOldError || err instanceof LsnInFutureError || err instanceof ReplayLockedError) {
      process.stderr.write(`riskmon replay: ${err.message}\n`);
      return 2;
    }
    throw err;
  } finally {
    redis.disconnect();
  }
}

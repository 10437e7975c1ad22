/**
 * `riskmon backfill --days N | --from ISO [--to ISO] [--force]`: rebuilds the buckets of a range from the source
 * tables on a running system (backfill.ts, kind `range`): history beyond the first start's, rows that were
 * dead-lettered, the gap of a lost slot. A temporary slot gives a snapshot and its position C; once the cdc has
 * published and the aggregators have applied every change before C, the range is rebuilt as the snapshot plus the
 * applied changes after C, and the aggregators continue.
 */
import crypto from 'node:crypto';
import { parseFlags, UsageError, wantsHelp } from '../lib/args.ts';
import { processClock } from '../lib/clock.ts';
import { withTimeout } from '../lib/timeout.ts';
import { commonSpec, connections, readConfig } from '../lib/config.ts';
import { createKafka, verifyKafka } from '../lib/kafka/index.ts';
import { componentLogger, type Logger } from '../lib/logger.ts';
import { formatLsn, parseLsn } from '../lib/lsn.ts';
import { createClient } from '../lib/pg.ts';
import { createRedis, verifyRedis } from '../lib/redis.ts';
import { slotWithSnapshot, SnapshotTimeoutError } from '../lib/snapshot.ts';
import { DAY } from '../lib/time.ts';
import { AggregatorsBehindError, BackfillLockedError, CATCH_UP_MS, runBackfill } from './backfill.ts';
import { aggregatorSpec, backfillSpec } from './config.ts';

const USAGE = 'usage: riskmon backfill --days N | --from ISO [--to ISO] [--force]\n' +
  '  Rebuilds every bucket of the range (whole local days; --days N: the last N × 24 hours and on) from the source\n' +
  '  tables, exactly, while the system runs: the range is rebuilt aside while the aggregators go on applying and the\n' +
  '  evaluator judging, then swapped in partition by partition. Needs the cdc and the aggregators running. --force\n' +
  '  takes over the lock of a replay or an interrupted backfill.\n';


export interface BackfillArgs { fromMs: number; toMs: number | null; force: boolean }

/** The command line, or the reason it is wrong. */
export function parseBackfillArgs(args: string[], now: number): BackfillArgs | { error: string } | 'help' {
  if (wantsHelp(args)) return 'help';
  let flags;
  try {
    flags = parseFlags('backfill', args, {
      days: { kind: 'int', min: 1, max: 400, help: 'a whole number of days from 1 to 400' },
      from: { kind: 'time', help: 'an ISO-8601 time with a zone such as 2026-12-01T00:00:00Z' },
      to: { kind: 'time', help: 'an ISO-8601 time with a zone such as 2026-12-02T00:00:00Z' },
      force: { kind: 'bool', help: 'take over the lock of an interrupted replay or backfill' },
    });
  } catch (err) {
    if (err instanceof UsageError) return { error: err.message };
    throw err;
  }
  const days = (flags.days as number | undefined) ?? null, from = (flags.from as number | undefined) ?? null;
  const to = (flags.to as number | undefined) ?? null, force = flags.force === true;
  if (days !== null && (from !== null || to !== null)) return { error: 'give --days or --from/--to, not both' };
  if (days !== null) return { fromMs: now - days * DAY, toMs: null, force };
  if (from === null) return { error: '--days or --from is required' };
  if (from < now - 400 * DAY) return { error: '--from lies more than 400 days back: the day buckets keep 400 days at most' };
  if (to !== null && to <= from) return { error: '--to must be after --from' };
  if (from > now) return { error: '--from lies in the future' };
  return { fromMs: from, toMs: to, force };
}

export async function main(args: string[]): Promise<number> {
  const code = await run(args);
  setTimeout(() => process.exit(code), 2000).unref(); // as replay: kafkajs connections may linger
  return code;
}

async function run(args: string[]): Promise<number> {
  const log = componentLogger('backfill');
  // --days N counts back from "now": the clock's (lib/clock.ts), read before the rest of the configuration
  const now = processClock(readConfig({ clock: commonSpec.clock }).clock, log);
  const parsed = parseBackfillArgs(args, now());
  if (parsed === 'help') { process.stdout.write(USAGE); return 0; }
  if ('error' in parsed) { process.stderr.write(`riskmon backfill: ${parsed.error}\n${USAGE}`); return 2; }
  const cfg = readConfig({ ...aggregatorSpec, ...connections('pgUrl'), ...backfillSpec });
  // every step before the snapshot is bounded and says what it waits on (a silent wait here once looked like a hang)
  log.info({ redis: cfg.redisMode }, 'checking Redis');
  await bounded(verifyRedis(cfg), 30_000, 'Redis did not answer within 30 s: check REDIS_URL and that Redis runs');
  log.info({ brokers: cfg.kafkaBrokers }, 'checking Kafka');
  await bounded(verifyKafka(cfg), 60_000, 'Kafka did not answer within 60 s: check KAFKA_BROKERS and that the brokers run');
  const kafka = createKafka(cfg, { clientId: 'riskmon-backfill' });
  const redis = createRedis(cfg, { maxRetriesPerRequest: 3, connectionName: 'riskmon-backfill' });
  const tempSlot = `riskmon_backfill_${crypto.randomBytes(4).toString('hex')}`;
  let snap;
  try {
    snap = await slotWithSnapshot(cfg.pgUrl, tempSlot, { temporary: true, log, timeoutMs: cfg.backfillSnapshotTimeoutS * 1000 });
  } catch (err) {
    redis.disconnect();
    if (err instanceof SnapshotTimeoutError) { process.stderr.write(`riskmon backfill: ${err.message}\n`); return 2; }
    throw err;
  }
  try {
    log.info({ consistentPoint: formatLsn(snap.consistentPoint), slot: cfg.slot }, 'snapshot taken; waiting for the cdc to publish every change before its position');
    await waitForSlot(cfg.pgUrl, cfg.slot, snap.consistentPoint, log);
    const r = await runBackfill({
      redis, cfg, log, source: snap, kind: 'range', slot: null, fromMs: parsed.fromMs, toMs: parsed.toMs, kafka, now,
      maxRowsPerSecond: cfg.backfillMaxRowsPerS, chunkHours: cfg.backfillChunkHours, readers: cfg.backfillReaders, maxFacts: cfg.backfillMaxCells, force: parsed.force,
    });
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return 0;
  } catch (err) {
    if (err instanceof BackfillLockedError || err instanceof CatchUpError || err instanceof AggregatorsBehindError) {
      process.stderr.write(`riskmon backfill: ${err.message}\n`);
      return 2;
    }
    throw err;
  } finally {
    await snap.close();
    redis.disconnect();
  }
}

class CatchUpError extends Error {}

/** `p`, or a CatchUpError saying `message` after `ms`. */
const bounded = <T>(p: Promise<T>, ms: number, message: string): Promise<T> => withTimeout(p, ms, () => new CatchUpError(message));

/** Until the cdc's slot has confirmed `lsn`: every change committed before it is in the topic. */
async function waitForSlot(pgUrl: string, slot: string, lsn: bigint, log: Logger): Promise<void> {
  const c = createClient({ connectionString: pgUrl, application_name: 'riskmon-backfill', connectionTimeoutMillis: 15_000, statement_timeout: 10_000 });
  await c.connect();
  try {
    const t0 = performance.now(), deadline = t0 + CATCH_UP_MS;
    let told = t0;
    for (;;) {
      const row = (await c.query('SELECT confirmed_flush_lsn::text AS lsn, active FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows[0];
      if (!row) throw new CatchUpError(`the cdc's slot "${slot}" does not exist: start riskmon cdc first (RISKMON_SLOT names it)`);
      if (row.lsn && parseLsn(row.lsn) >= lsn) return;
      if (performance.now() - told >= 10_000) {
        log.info({ slot, confirmed: row.lsn, wanted: formatLsn(lsn), active: row.active, waitedSeconds: Math.round((performance.now() - t0) / 1000) }, 'waiting for the cdc\'s slot to confirm the snapshot\'s position');
        told = performance.now();
      }
      if (performance.now() > deadline) throw new CatchUpError(`the cdc's slot "${slot}" has not reached ${formatLsn(lsn)} within ${CATCH_UP_MS / 1000} s: is riskmon cdc running?`);
      await new Promise((res) => setTimeout(res, 200));
    }
  } finally {
    await c.end().catch(() => {});
  }
}

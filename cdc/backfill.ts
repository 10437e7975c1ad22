/**
 * The first start's history backfill (README "Onboarding"): when the cdc creates its slot, it creates it with an
 * exported snapshot (lib/snapshot.ts) and takes in the last RISKMON_BACKFILL_DAYS of the mapped tables under that
 * snapshot (aggregator `runBackfill`) before it streams anything, so every row is counted once: by the backfill as
 * it stood at the slot's consistent point, or by the stream after it. The aggregators find nothing of the new slot in
 * the topic until the backfilled buckets are written.
 *
 * Killed at any moment, the next start finds the store's backfill record `running` for this slot (it is written
 * before the slot is created): nothing of the slot was streamed yet, so it drops the slot, creates it anew with a new
 * snapshot and backfills again from the start (over the earlier range at least), deleting what the interrupted run
 * wrote. Cost: the backfill's time again; nothing is counted twice or lost.
 */
import { runBackfill } from '../aggregator/index.ts';
import { readBackfill, recordGap, writeBackfill } from '../aggregator/store/index.ts';
import { systemClock } from '../lib/clock.ts';
import type { Logger } from '../lib/logger.ts';
import { createClient } from '../lib/pg.ts';
import { createRedis } from '../lib/redis.ts';
import { slotWithSnapshot } from '../lib/snapshot.ts';
import { DAY, iso } from '../lib/time.ts';
import { SetupError, SQLSTATE, sqlState } from './errors.ts';
import type { CdcConfig } from './pipeline.ts';

/** Whether the slot exists; creates it with the first start's backfill when it does not (and the store says it is the first start). */
export async function slotWithBackfill(cfg: CdcConfig, log: Logger, now: () => number = systemClock): Promise<'exists' | 'created'> {
  const pg = createClient({ connectionString: cfg.pgUrl });
  await pg.connect();
  const redis = createRedis(cfg, { connectionName: 'riskmon-cdc-backfill' });
  try {
    const slotExists = async () => (await pg.query('SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1', [cfg.slot])).rows[0] as { active_pid: number | null } | undefined;
    const rec = await readBackfill(redis, cfg.redisPrefix);
    const mine = rec?.kind === 'initial' && rec.slot === cfg.slot;
    const interrupted = mine && rec!.state === 'running';
    const slot = await slotExists();
    if (slot && !interrupted) return 'exists';
    if (!slot && mine && rec!.state === 'done') {
      // The slot this store was backfilled for is gone: not a first start. Streaming resumes from a new slot; what
      // committed meanwhile is missing until a backfill of the gap (docs/backfill.md "A lost slot").
      const r = await pg.query(`SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')`, [cfg.slot]);
      const gap = await recordGap(redis, cfg.redisPrefix, cfg.partitions, cfg.slot, now());
      log.warn({ slot: cfg.slot, lsn: r.rows[0].lsn, backfilledAt: rec!.finishedAt, gap },
        `replication slot "${cfg.slot}" was lost and is created anew: changes committed while it was missing are not in the buckets. Fix: ${gap.fix}`);
      return 'created';
    }
    let fromMs = now() - cfg.backfillDays * DAY;
    if (interrupted) {
      fromMs = Math.min(fromMs, Date.parse(rec!.from));
      log.warn({ slot: cfg.slot, startedAt: rec!.startedAt, chunksDone: rec!.chunksDone, chunks: rec!.chunks },
        'the first start\'s backfill was interrupted: nothing of the slot was streamed yet, so the slot is created anew and the backfill starts over');
      if (slot) await dropSlot(pg, cfg.slot, now);
    }
    // Recorded before the slot exists: a kill between the two is seen as an interrupted first start.
    await writeBackfill(redis, cfg.redisPrefix, {
      state: 'running', kind: 'initial', id: rec && interrupted ? rec.id : 'starting', slot: cfg.slot, from: iso(fromMs), to: null,
      consistentPoint: null, startedAt: iso(now()), finishedAt: null, rows: 0, chunksDone: 0, chunks: 0, topicChanges: 0, rowsPerSecond: null,
    });
    let snap;
    try {
      snap = await slotWithSnapshot(cfg.pgUrl, cfg.slot, { temporary: false, applicationName: 'riskmon-cdc-backfill', log, timeoutMs: cfg.backfillSnapshotTimeoutS * 1000 });
    } catch (err) {
      const code = sqlState(err);
      if (code === SQLSTATE.configurationLimit) throw new SetupError(`no free replication slot: ${(err as Error).message}`, 'raise max_replication_slots (restart needed) or drop an unused slot (SELECT * FROM pg_replication_slots)', { cause: err });
      if (code === SQLSTATE.insufficientPrivilege) throw new SetupError(`not allowed to create slot "${cfg.slot}"`, 'ALTER ROLE <user> REPLICATION; or create the slot as a superuser', { cause: err });
      throw err;
    }
    log.info({ slot: cfg.slot, consistentPoint: snap.consistentPoint.toString(16), days: cfg.backfillDays, from: iso(fromMs) },
      'replication slot created with a snapshot: taking in the history before streaming');
    try {
      await runBackfill({
        redis, cfg, log, source: snap, kind: 'initial', slot: cfg.slot, fromMs, toMs: null, kafka: null, now,
        maxRowsPerSecond: cfg.backfillMaxRowsPerS, chunkHours: cfg.backfillChunkHours, readers: cfg.backfillReaders, maxFacts: cfg.backfillMaxCells,
      });
    } finally {
      await snap.close();
    }
    return 'created';
  } finally {
    await pg.end().catch(() => {});
    redis.disconnect();
  }
}

/** Drops the slot of an interrupted first start; its walsender may still be going away (kill -9 of the cdc). */
async function dropSlot(pg: ReturnType<typeof createClient>, slot: string, now: () => number): Promise<void> {
  const deadline = now() + 60_000;
  for (;;) {
    try {
      await pg.query('SELECT pg_drop_replication_slot($1)', [slot]);
      return;
    } catch (err) {
      if (sqlState(err) === SQLSTATE.undefinedObject) return;
      if (sqlState(err) !== SQLSTATE.objectInUse || now() > deadline) throw err;
      await new Promise((res) => setTimeout(res, 500));
    }
  }
}

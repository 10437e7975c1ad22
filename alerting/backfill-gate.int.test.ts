/**
 * No judgement on incomplete data: while the store's backfill record says `running`, the evaluator evaluates no
 * minute (they wait, and are evaluated in order afterwards); when the backfill is done, the baselines it had loaded
 * are read anew at once, so a merchant whose history the backfill brought is judged on it in the next minute —
 * not after the 15-minute baseline refresh or the next day.
 */
import type pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import type { BackfillRecord } from '../aggregator/store/index.ts';
import { logger } from '../lib/logger.ts';
import { MINUTE } from '../lib/time.ts';
import { freshDatabase, uniqueName } from '../test/harness/services.ts';
import { Evaluator } from './evaluator.ts';
import { defaultRules } from './rules/config.ts';
import { addHistory, riskStore } from './testing/fixtures.ts';
import { MemoryReader } from './testing/memory-reader.ts';

const T0 = Date.parse('2026-11-21T05:00:00Z'); // 14:00 in Seoul
const LATENESS = 5000;

class BackfillingReader extends MemoryReader {
  record: BackfillRecord | null = null;
  async backfill(): Promise<BackfillRecord | null> { return this.record; }
}

const record = (state: 'running' | 'done', id: string, kind: 'initial' | 'range' = 'initial', more: Partial<BackfillRecord> = {}): BackfillRecord => ({
  ...more, state, kind, id, slot: 'riskmon', from: '2026-11-13T15:00:00.000Z', to: null, consistentPoint: '0/1', startedAt: '', finishedAt: null,
  rows: 0, chunksDone: 0, chunks: 1, topicChanges: 0, rowsPerSecond: null,
});

describe('the evaluator and a running backfill', () => {
  let db: pg.Pool;
  afterAll(async () => { await db?.end(); });

  it('judges nobody while it writes the live buckets, judges on while a range is rebuilt aside, then reloads the baselines at once', async () => {
    db = await riskStore(await freshDatabase('risk'));
    const reader = new BackfillingReader();
    const clock = { now: T0 };
    const ev = new Evaluator({
      rules: defaultRules(), tz: 'Asia/Seoul', allowedLatenessMs: LATENESS, maxIngestLagMs: 120_000, replayAfterMs: 600_000,
      evalPollMs: 50, maxCatchUpMinutes: 1440, evaluatorName: 'default', redisPrefix: uniqueName('bg'), slackEnabled: false,
    }, { reader, db, redis: null, log: logger, now: () => clock.now });
    const close = async (M: number) => {
      reader.wm = M + MINUTE + LATENESS;
      clock.now = reader.wm + 2000;
      let n = 0;
      while (await ev.evaluateNext()) n++;
      return n;
    };
    const evaluation = async (merchantId: string) => (await db.query(`SELECT status, reason, minute FROM evaluations WHERE rule = 'cancel_rate_spike' AND merchant_id = $1`, [merchantId])).rows[0];
    const alerts = async () => (await db.query(`SELECT rule, merchant_id FROM alerts`)).rows;

    // before the backfill: the merchant has no history, so it cannot be judged
    const M0 = T0 - 10 * MINUTE;
    reader.add('s1', M0, { approvals: 60, cancels: 20 });
    expect(await close(M0)).toBe(1);
    expect(await evaluation('s1')).toMatchObject({ status: 'not_evaluated', reason: expect.stringMatching(/too little history/) });

    // a backfill starts: minutes close, nothing is judged
    reader.record = record('running', 'b1');
    reader.add('s1', M0 + MINUTE, { approvals: 30, cancels: 10 });
    expect(await close(M0 + 2 * MINUTE)).toBe(0);
    expect(await alerts()).toEqual([]);
    // it writes the merchant's history (2% cancels a day) and ends
    addHistory(reader, 's1', T0, { approvals: 1000, cancels: 20, amount: 10_000_000n });
    addHistory(reader, 's2', T0, { approvals: 1000, cancels: 20, amount: 10_000_000n });
    reader.record = record('done', 'b1');
    // the waiting minutes are evaluated in order, on the new baselines
    expect(await close(M0 + 2 * MINUTE)).toBe(2);
    expect(await alerts()).toEqual([{ rule: 'cancel_rate_spike', merchant_id: 's1' }]);

    // a range backfill rebuilding aside leaves the live buckets whole: judging goes on (s2 surges and alerts) …
    const M1 = M0 + 3 * MINUTE;
    reader.record = record('running', 'b2', 'range', { aside: true, swapping: false });
    reader.add('s2', M1, { approvals: 60, cancels: 30 });
    expect(await close(M1)).toBe(1);
    expect(await alerts()).toContainEqual({ rule: 'cancel_rate_spike', merchant_id: 's2' });
    // … until it swaps its range in: then nobody is judged until it is done
    reader.record = record('running', 'b2', 'range', { aside: true, swapping: true });
    expect(await close(M1 + 2 * MINUTE)).toBe(0);
    reader.record = record('done', 'b2', 'range', { aside: true, swapping: false });
    expect(await close(M1 + 2 * MINUTE)).toBe(2);
  }, 60_000);
});

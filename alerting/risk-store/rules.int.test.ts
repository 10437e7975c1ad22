/**
 * Rules as versioned data in a real risk store: seeding, drafts, validation naming the path, and activation switching
 * the evaluator at a minute boundary with no minute evaluated twice or skipped.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logger } from '../../lib/logger.ts';
import { MINUTE } from '../../lib/time.ts';
import { freshDatabase } from '../../test/harness/services.ts';
import { Evaluator } from '../evaluator.ts';
import { addHistory, riskStore } from '../testing/fixtures.ts';
import { MemoryReader } from '../testing/memory-reader.ts';
import { parseRules, RulesError } from '../rules/config.ts';
import { activate, activeRules, createDraft, getVersion, listVersions, seedRules } from './rules.ts';

const T0 = Date.parse('2026-11-21T05:00:00Z');
const LATENESS = 5000;
const log = logger.child({ component: 'rules-test' });
// The significance guard off, so that only the multiplier decides.
const SEED = parseRules({ version: 'ops-1', cancel_rate_spike: { maxPValue: 1 } });

describe('rules as versioned data', () => {
  let db: pg.Pool;
  beforeAll(async () => { db = await riskStore(await freshDatabase('risk')); });
  afterAll(async () => { await db?.end(); });

  it('seeds RISKMON_RULES as the first, active version, once', async () => {
    expect(await seedRules(db, SEED)).toBe(true);
    expect(await seedRules(db, parseRules({ version: 'other' }))).toBe(false);
    const a = (await activeRules(db))!;
    expect(a).toMatchObject({ version: 'ops-1', activatedBy: 'RISKMON_RULES' });
    expect(a.config).toEqual(SEED);
  });

  it('stores drafts with who made them; a wrong value names its path; a name is used once', async () => {
    const d = await createDraft(db, { cancel_rate_spike: { multiplier: 4, maxPValue: 1 }, overrides: { '42': { volume_drop: { enabled: false } } } }, 'stricter', 'alice');
    expect(d.version).toMatch(/^v\d+$/);
    expect((await getVersion(db, d.version))!).toMatchObject({ version: d.version, cancel_rate_spike: { multiplier: 4 }, overrides: { '42': { volume_drop: { enabled: false } } } });
    const bad = await createDraft(db, { cancel_rate_spike: { multiplier: -1 }, overrides: { '7': { volume_drop: { ratio: 'half' } } } }, '', 'alice').catch((e) => e);
    expect(bad).toBeInstanceOf(RulesError);
    expect(bad.paths).toEqual(['cancel_rate_spike.multiplier', 'overrides.7.volume_drop.ratio']);
    const dup = await createDraft(db, { version: 'ops-1' }, '', 'alice').catch((e) => e);
    expect(dup).toBeInstanceOf(RulesError);
    expect(dup.message).toMatch(/version "ops-1" exists/);
    const versions = await listVersions(db);
    expect(versions.map((v) => [v.version, v.createdBy, v.active, v.activatedBy])).toEqual([[d.version, 'alice', false, null], ['ops-1', 'RISKMON_RULES', true, 'RISKMON_RULES']]);
    expect(await activate(db, 'nope', 'alice')).toBeNull();
  });

  it('an activation switches the evaluator from the next closed minute; no minute is evaluated twice or skipped', async () => {
    const reader = new MemoryReader();
    const clock = { now: T0 };
    const ev = new Evaluator({
      rules: parseRules({}), tz: 'Asia/Seoul', allowedLatenessMs: LATENESS, maxIngestLagMs: 120_000, replayAfterMs: 600_000,
      evalPollMs: 50, maxCatchUpMinutes: 1440, evaluatorName: 'default', redisPrefix: 'unused', slackEnabled: false,
    }, { reader, db, redis: null, log, now: () => clock.now });
    const M0 = T0 - 10 * MINUTE;
    addHistory(reader, 'c1', T0, { approvals: 1000, cancels: 20, amount: 10_000_000n }); // 2%
    reader.add('c1', M0 - 30 * MINUTE, { approvals: 100, cancels: 2 });
    reader.add('c1', M0 + 5 * MINUTE, { cancels: 5 }); // window from M0+5: 7% — fires at ×2, not at ×4
    const close = async (M: number) => {
      reader.wm = M + MINUTE + LATENESS;
      clock.now = reader.wm + 2000;
      return ev.evaluateNext();
    };
    const strict = (await listVersions(db)).find((v) => v.version !== 'ops-1')!.version;
    const versions: string[] = [];
    for (let i = 0; i < 10; i++) {
      if (i === 5) await activate(db, strict, 'alice'); // after M0+4 was evaluated
      if (i === 8) await activate(db, 'ops-1', 'bob');
      const r = await close(M0 + i * MINUTE);
      versions.push(r!.ruleVersion);
    }
    expect(versions).toEqual(['ops-1', 'ops-1', 'ops-1', 'ops-1', 'ops-1', strict, strict, strict, 'ops-1', 'ops-1']);
    const logged = (await db.query(`SELECT minute, rule_version FROM evaluated_minutes WHERE evaluator = 'default' ORDER BY minute`)).rows;
    expect(logged.map((r) => [r.minute.getTime(), r.rule_version])).toEqual(versions.map((v, i) => [M0 + i * MINUTE, v]));
    const alerts = (await db.query('SELECT merchant_id, fired_at, rule_version FROM alerts')).rows;
    expect(alerts.map((a) => [a.merchant_id, a.fired_at.getTime(), a.rule_version])).toEqual([['c1', M0 + 8 * MINUTE, 'ops-1']]);
    expect((await listVersions(db)).find((v) => v.version === 'ops-1')).toMatchObject({ active: true, activatedBy: 'bob' });
  });
});

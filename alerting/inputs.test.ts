/**
 * Today's full hours for volume_drop (inputs.ts): rows that arrive late for an earlier hour of today, and a merchant
 * that joins the eligible set mid-hour (a baseline reload, a backfill), reach the rule within a minute — not only at
 * the next hour, which judged "today so far" on the current hour alone (a false volume_drop).
 */
import { describe, expect, it } from 'vitest';
import { logger } from '../lib/logger.ts';
import { dayStart, HOUR, MINUTE } from '../lib/time.ts';
import type { DayBaselines } from './baseline.ts';
import { DayInputs } from './inputs.ts';
import { defaultRules } from './rules/config.ts';
import { MemoryReader } from './testing/memory-reader.ts';

const TZ = 'Asia/Seoul';
const today = dayStart(Date.parse('2026-12-07T03:00:00Z'), TZ); // 2026-12-06T15:00Z
const hs = today + 10 * HOUR;

/** The part of a day's baselines todayFullHours reads: the volume_drop merchants. */
function base(ids: string[]): DayBaselines {
  return { todayStart: today, eligible: new Set(ids), profiles: new Map(ids.map((id) => [id, new Float64Array(24)])) } as unknown as DayBaselines;
}

describe('today\'s full hours', () => {
  it('take in late rows of earlier hours within a minute, and merchants that became eligible mid-hour at once', async () => {
    const reader = new MemoryReader(TZ).add('a', today + HOUR, { approvals: 1, approvedAmount: 1000n });
    let now = hs + MINUTE;
    const inputs = new DayInputs(reader, defaultRules(), { tz: TZ, baselineRefreshMs: Infinity, log: logger, now: () => now });
    expect((await inputs.todayFullHours(base(['a']), today, hs, [])).get('a')?.approvedAmount).toBe(1000n);
    // rows for 01:00–03:00 of today arrive late, and merchant b becomes eligible (a backfill finished)
    reader.add('a', today + 3 * HOUR, { approvals: 5, approvedAmount: 172_500_000n });
    reader.add('b', today + 2 * HOUR, { approvals: 2, approvedAmount: 7_500_000n });
    now += 5_000;
    const withB = await inputs.todayFullHours(base(['a', 'b']), today, hs, []);
    expect(withB.get('b')?.approvedAmount).toBe(7_500_000n);
    now += MINUTE;
    expect((await inputs.todayFullHours(base(['a', 'b']), today, hs, [])).get('a')?.approvedAmount).toBe(172_501_000n);
  });

  it('a backtest (no refresh) reads each hour once', async () => {
    const reader = new MemoryReader(TZ).add('a', today + HOUR, { approvals: 1, approvedAmount: 1000n });
    const inputs = new DayInputs(reader, defaultRules(), { tz: TZ, baselineRefreshMs: Infinity, todayRefreshMs: Infinity, log: logger, now: () => 0 });
    await inputs.todayFullHours(base(['a']), today, hs, []);
    reader.add('a', today + 3 * HOUR, { approvals: 5, approvedAmount: 5n });
    expect((await inputs.todayFullHours(base(['a']), today, hs, [])).get('a')?.approvedAmount).toBe(1000n);
  });
});

import { describe, expect, it } from 'vitest';
import type { Exposure } from '../../lib/exposure.ts';
import { alertMessage, digestMessage, moneyLine, type NotificationView } from './message.ts';

const exposure = (receivable: string): Exposure => ({
  merchantId: '42', settledThrough: '2026-11-20T15:00:00.000Z', approvedSinceSettled: '1000000', canceledSinceSettled: String(1_000_000 + Number(receivable)),
  netSinceSettled: `-${receivable}`, receivable, projectedReceivable: receivable, nextPayoutAt: '2026-11-22T15:00:00.000Z', holds: [],
});
const view = (o: Partial<NotificationView> = {}): NotificationView => ({
  id: '1', kind: 'fired', alertId: '7', minute: '2026-11-21T08:00:00.000Z', rule: 'receivable', merchantId: '42',
  evidence: { rule: 'receivable', ruleVersion: 'v1', minReceivable: 30_000_000, exposure: exposure('30500000') } as never,
  exposureAtFiring: exposure('30500000'), receivableNow: '41000000', ...o,
});

describe('Slack messages carry the money at risk', () => {
  it('says the receivable now and at firing, in the text and in its own block', () => {
    const m = alertMessage(view(), 'https://riskmon.example');
    expect(moneyLine(view())).toBe('₩ at risk now 41,000,000 KRW (at firing 30,500,000 KRW)');
    expect(m.text).toContain('₩ at risk now 41,000,000 KRW (at firing 30,500,000 KRW)');
    expect(m.text).toContain('receivable 30,500,000 KRW (canceled 31,500,000 KRW vs approved 1,000,000 KRW since 2026-11-20T15:00:00.000Z); fires at ≥ 30,000,000 KRW');
    expect(JSON.stringify(m.blocks)).toContain('*₩ at risk now 41,000,000 KRW (at firing 30,500,000 KRW)*');
  });

  it('a resolve says only what is at risk now; another rule\'s alert on a merchant that owes carries it too; none without exposure', () => {
    expect(moneyLine(view({ kind: 'resolved', receivableNow: '0' }))).toBe('₩ at risk now 0 KRW');
    const other = view({ rule: 'cancel_rate_spike', evidence: { window: { rate: 0.5, cancels: 5, approvals: 10 }, baseline: { rate: 0.02, cancels: 2, approvals: 100 }, multiplier: 3, threshold: 0.06 } as never });
    expect(alertMessage(other, 'https://x').text).toMatch(/cancel rate 50\.0% .* — ₩ at risk now 41,000,000 KRW/);
    expect(digestMessage([other, view({ merchantId: '43' })], 'https://x').blocks.map((b) => JSON.stringify(b)).join('')).toContain('₩ at risk now 41,000,000 KRW');
    const bare = view({ exposureAtFiring: undefined, receivableNow: undefined });
    expect(moneyLine(bare)).toBe('');
    expect(moneyLine(view({ exposureAtFiring: exposure('0'), receivableNow: '0' }))).toBe('');
    expect(alertMessage(bare, 'https://x').blocks).toHaveLength(5);
  });
});

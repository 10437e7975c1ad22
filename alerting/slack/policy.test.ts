import { describe, expect, it } from 'vitest';
import { alertMessage, digestMessage, merchantLink } from './message.ts';
import { classify, parseRetryAfter } from './policy.ts';

describe('slack response policy', () => {
  const now = Date.parse('2026-11-21T00:00:00Z');
  it('2xx is sent', () => expect(classify(200, null, 'ok', 1, 5, now)).toEqual({ kind: 'sent' }));
  it('429 waits for Retry-After (seconds or date)', () => {
    expect(classify(429, '3', '', 1, 5, now)).toEqual({ kind: 'rate_limited', retryAfterMs: 3000 });
    expect(parseRetryAfter(new Date(now + 5000).toUTCString(), now)).toBe(5000);
    expect(parseRetryAfter(null, now)).toBe(1000);
  });
  it('5xx and network errors retry with growing jittered backoff, then fail', () => {
    const a = classify(500, null, 'oops', 1, 5, now, () => 1);
    const b = classify(503, null, '', 3, 5, now, () => 1);
    expect(a.kind).toBe('retry');
    expect(b.kind === 'retry' && a.kind === 'retry' && b.delayMs > a.delayMs).toBe(true);
    expect(classify(null, null, 'ECONNREFUSED', 2, 5, now).kind).toBe('retry');
    expect(classify(500, null, '', 5, 5, now)).toMatchObject({ kind: 'failed', reason: expect.stringMatching(/gave up after 5/) });
  });
  it('other 4xx fail at once', () => {
    expect(classify(404, null, 'no_service', 1, 5, now)).toEqual({ kind: 'failed', reason: 'HTTP 404: no_service' });
  });
});

describe('slack messages', () => {
  const n = {
    id: '1', kind: 'fired' as const, rule: 'cancel_rate_spike', merchantId: '42', alertId: '7', minute: '2026-11-21T05:00:00.000Z',
    evidence: { ruleVersion: 'v1', window: { approvals: 100, cancels: 12, rate: 0.12 }, baseline: { approvals: 1000, cancels: 20, rate: 0.02 }, multiplier: 2, threshold: 0.04 },
  };
  it('names the merchant, the rule, the evidence and links the dashboard', () => {
    const m = alertMessage(n, 'https://risk.example.com/');
    const s = JSON.stringify(m);
    expect(m.text).toMatch(/merchant 42.*cancel rate 12\.0% \(12\/100/);
    expect(s).toContain('https://risk.example.com/#/merchants/42');
    expect(merchantLink('http://x', 'a b')).toBe('http://x/#/merchants/a%20b');
  });
  it('marks a re-notification of an acknowledged alert with who acknowledged it, and nothing else', () => {
    const ack = { by: 'Ji-woo <@U123>', at: '2026-11-21T05:10:00.000Z' };
    const m = alertMessage({ ...n, kind: 'renotified', ack, assignee: 'Min' }, 'http://x');
    expect(m.text).toMatch(/^:bell: STILL FIRING \(acknowledged by Ji-woo ‹@U123›\) cancel-rate spike/);
    expect(m.text).toContain('acknowledged by Ji-woo ‹@U123› at 2026-11-21T05:10:00.000Z, assigned to Min');
    expect(JSON.stringify(m.blocks)).toContain(':eyes: acknowledged by');
    expect(JSON.stringify(m.blocks)).toContain('http://x/#/alerts/7');
    expect(JSON.stringify(m)).not.toContain('<@U123>');
    // Not acknowledged, or not a re-notification: unmarked.
    expect(alertMessage({ ...n, kind: 'renotified', ack: null }, 'http://x').text).not.toContain('acknowledged');
    expect(alertMessage({ ...n, kind: 'resolved', ack }, 'http://x').text).not.toContain('acknowledged');
    const d = digestMessage([{ ...n, kind: 'renotified', ack }, { ...n, id: '2' }, { ...n, id: '3' }, { ...n, id: '4' }], 'http://x');
    expect(JSON.stringify(d.blocks)).toContain('(acknowledged by Ji-woo');
  });
  it('escapes &, < and > from the source and the evidence in every text, so nothing is read as a mention or link', () => {
    const hostile = { ...n, merchantId: '<!channel>&<https://evil.example|click>', evidence: { ...n.evidence, ruleVersion: '<@U999>' } };
    const texts = (p: unknown): string[] => {
      const out: string[] = [];
      JSON.stringify(p, (k, v) => { if (k === 'text' && typeof v === 'string') out.push(v); return v; });
      return out;
    };
    for (const m of [alertMessage(hostile, 'https://risk.example.com'), digestMessage([hostile, { ...hostile, id: '2' }], 'https://risk.example.com')]) {
      const mrkdwn = [m.text, ...texts(m.blocks.filter((b) => (b as { type: string }).type !== 'header'))];
      // the only '<' left opens a link riskmon made itself, to its own dashboard
      for (const t of mrkdwn) for (const open of t.matchAll(/</g)) expect(t.slice(open.index!, open.index! + 27)).toBe('<https://risk.example.com/#');
      expect(JSON.stringify(m)).toContain('&lt;!channel&gt;&amp;&lt;https://evil.example|click&gt;');
      expect(JSON.stringify(m)).not.toContain('<@U999>');
    }
  });
  it('a digest lists every transition', () => {
    const d = digestMessage([n, { ...n, id: '2', merchantId: '43' }, { ...n, id: '3', kind: 'resolved', merchantId: '44' }], 'http://x');
    expect(d.text).toMatch(/^3 alert transitions/);
    expect(JSON.stringify(d.blocks)).toContain('merchant 44');
  });
});

import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sign, signatureHeader, verifySignature } from './webhook.ts';

const body = '{"id":"e1","type":"payout.hold"}';

describe('webhook signatures', () => {
  it('v1 is the hex HMAC-SHA256 of "<t>.<raw body>" (the recipe of docs/contracts.md, done by hand)', () => {
    const byHand = createHmac('sha256', 'new-secret-0123456789').update(`1700000000.${body}`).digest('hex');
    expect(sign('new-secret-0123456789', 1700000000, body)).toBe(byHand);
    expect(signatureHeader(['new-secret-0123456789'], 1700000000, body)).toBe(`t=1700000000,v1=${byHand}`);
  });

  it('during a rotation both secrets sign, the current first, and a receiver with either verifies', () => {
    const h = signatureHeader(['new-secret-0123456789', 'old-secret-0123456789'], 1700000000, body);
    expect(h.split(',')).toHaveLength(3);
    expect(verifySignature(h, body, ['old-secret-0123456789'], 1700000010)).toEqual({ ok: true, t: 1700000000 });
    expect(verifySignature(h, body, ['new-secret-0123456789'], 1700000010)).toEqual({ ok: true, t: 1700000000 });
    expect(verifySignature(h, body, ['other-secret-0123456789'], 1700000010)).toMatchObject({ ok: false, reason: 'no v1 signature matches a known secret' });
  });

  it('refuses a changed body, an old t, and malformed headers', () => {
    const h = signatureHeader(['s-0123456789abcdef'], 1700000000, body);
    expect(verifySignature(h, body.replace('hold', 'release'), ['s-0123456789abcdef'], 1700000000).ok).toBe(false);
    expect(verifySignature(h, body, ['s-0123456789abcdef'], 1700000000 + 301)).toMatchObject({ ok: false, reason: expect.stringContaining('more than 300 s') });
    // t moved forward with the old signature: the signed string changed, so no signature matches
    expect(verifySignature(h.replace('t=1700000000', 't=1700000100'), body, ['s-0123456789abcdef'], 1700000100).ok).toBe(false);
    expect(verifySignature(undefined, body, ['s'], 0)).toMatchObject({ ok: false, reason: 'no riskmon-signature header' });
    expect(verifySignature('v1=abc', body, ['s'], 0)).toMatchObject({ ok: false, reason: 'no t= in the signature header' });
    expect(verifySignature('t=1700000000', body, ['s'], 1700000000)).toMatchObject({ ok: false, reason: 'no v1= in the signature header' });
  });
});

import { describe, expect, it } from 'vitest';
import { apiKeys } from '../lib/config.ts';
import { createHash } from 'node:crypto';
import { AuthFailures, authorize, bearerOf, KeyRing, keyIdOf } from './auth.ts';
import { ApiError, toErrorBody } from './errors.ts';
import { silenceWindow } from './routes/silences.ts';
import { formatStatus } from './status.ts';

const ring = new KeyRing([{ key: 'viewer-key-1234', role: 'viewer' }, { key: 'analyst-key-123', role: 'analyst', name: 'Ji-woo Park' }, { key: 'admin-key-12345', role: 'admin' }], 'id-secret');
const code = (fn: () => unknown) => { try { fn(); } catch (e) { return (e as ApiError).code; } return 'ok'; };

describe('API keys', () => {
  it('finds the role of a known key only', () => {
    expect(ring.lookup('viewer-key-1234')?.role).toBe('viewer');
    expect(ring.lookup('admin-key-12345')?.role).toBe('admin');
    expect(ring.lookup('viewer-key-123')).toBeNull();
    expect(ring.lookup('')).toBeNull();
  });

  it('401 without or with an unknown key, 403 for a viewer on an admin route', () => {
    expect(code(() => authorize(ring, null, 'viewer'))).toBe('unauthorized');
    expect(code(() => authorize(ring, 'nope-nope-nope', 'viewer'))).toBe('unauthorized');
    expect(code(() => authorize(ring, 'viewer-key-1234', 'admin'))).toBe('forbidden');
    expect(code(() => authorize(ring, 'admin-key-12345', 'admin'))).toBe('ok');
  });

  it('orders roles viewer < analyst < admin and names the actor', () => {
    expect(code(() => authorize(ring, 'viewer-key-1234', 'analyst'))).toBe('forbidden');
    expect(code(() => authorize(ring, 'analyst-key-123', 'analyst'))).toBe('ok');
    expect(code(() => authorize(ring, 'analyst-key-123', 'admin'))).toBe('forbidden');
    expect(code(() => authorize(ring, 'admin-key-12345', 'analyst'))).toBe('ok');
    expect(ring.lookup('analyst-key-123')?.name).toBe('Ji-woo Park');
    expect(ring.lookup('admin-key-12345')?.name).toMatch(/^key [0-9a-f]{12}$/);
  });

  it('shows a key id that is an HMAC under a server-side secret, not a prefix of the key\'s hash', () => {
    const id = ring.lookup('admin-key-12345')!.keyId;
    expect(id).toBe(keyIdOf('id-secret', 'admin-key-12345'));
    expect(createHash('sha256').update('admin-key-12345').digest('hex')).not.toContain(id);
    expect(new KeyRing([{ key: 'admin-key-12345', role: 'admin' }], 'other-secret').lookup('admin-key-12345')!.keyId).not.toBe(id);
    // without a secret: keyed by every configured key, so the same keys give the same ids (restarts, instances)
    const keys = [{ key: 'a'.repeat(24), role: 'admin' as const }, { key: 'b'.repeat(24), role: 'viewer' as const }];
    const [a1, a2] = [new KeyRing(keys), new KeyRing([...keys].reverse())].map((r) => r.lookup('a'.repeat(24))!.keyId);
    expect(a1).toBe(a2);
    expect(createHash('sha256').update('a'.repeat(24)).digest('hex')).not.toContain(a1);
  });

  it('counts failed authentications per address in a window, within a bounded table', () => {
    let now = 0;
    const f = new AuthFailures(3, 60_000, () => now, 5);
    for (let i = 0; i < 3; i++) { expect(f.blockedFor('10.0.0.1')).toBe(0); f.fail('10.0.0.1'); }
    expect(f.blockedFor('10.0.0.1')).toBe(60_000);
    expect(f.blockedFor('10.0.0.2')).toBe(0);
    now = 59_999;
    expect(f.blockedFor('10.0.0.1')).toBe(1);
    now = 60_000;
    expect(f.blockedFor('10.0.0.1')).toBe(0);
    for (let i = 0; i < 1000; i++) f.fail(`10.1.${i >> 8}.${i & 255}`);
    expect(f.size).toBeLessThanOrEqual(5);
  });

  it('parses key:role and key:role:name entries, and names what is wrong', () => {
    const opt = apiKeys('RISKMON_API_KEYS', 'keys');
    const [a, z] = ['a'.repeat(24), 'z'.repeat(24)];
    expect(opt.parse(`${a}:viewer, k1:with:colon-0123456789abcdef:analyst:Ana Lee ,${z}:admin:ops-bot`)).toEqual([
      { key: a, role: 'viewer' }, { key: 'k1:with:colon-0123456789abcdef', role: 'analyst', name: 'Ana Lee' }, { key: z, role: 'admin', name: 'ops-bot' },
    ]);
    expect(() => opt.parse(`${a}:root`)).toThrow('role "root" is not viewer, analyst or admin');
    expect(() => opt.parse(`${a}:analyst:<b>`)).toThrow(/name "<b>"/);
    expect(() => opt.parse('short:admin')).toThrow(/at least 24 characters/);
    expect(() => opt.parse(`${'x'.repeat(23)}:admin`)).toThrow(/at least 24 characters.*openssl rand -base64 32/);
    expect(() => opt.parse(`${a}:admin,${a}:viewer`)).toThrow(/listed twice/);
  });

  it('reads a bearer header', () => {
    expect(bearerOf('Bearer abc')).toBe('abc');
    expect(bearerOf('bearer  abc ')).toBe('abc');
    expect(bearerOf('Basic abc')).toBeNull();
  });
});

describe('error bodies', () => {
  it('never show internals of a 5xx', () => {
    const { status, body } = toErrorBody(new Error('connect ECONNREFUSED 10.0.0.5:5432 at Pool.connect (pg/index.js:45)'));
    expect(status).toBe(500);
    expect(JSON.stringify(body)).not.toMatch(/ECONNREFUSED|index\.js/);
  });

  it('name the field of a validation error', () => {
    const err = Object.assign(new Error('x'), { validation: [{ instancePath: '/limit', message: 'must be >= 1', params: {} }], validationContext: 'querystring' });
    expect(toErrorBody(err)).toEqual({ status: 400, body: { error: 'bad_request', field: 'limit', message: 'limit must be >= 1' } });
    const missing = Object.assign(new Error('x'), { validation: [{ instancePath: '', message: "must have required property 'from'", params: { missingProperty: 'from' } }] });
    expect(toErrorBody(missing).body.field).toBe('from');
  });
});

describe('silence window', () => {
  const now = Date.parse('2026-11-21T08:00:00Z');
  it('takes minutes from now or an explicit end', () => {
    expect(silenceWindow({ merchantId: '1', minutes: 30, reason: '' }, now)).toEqual({ startsAt: now, endsAt: now + 1_800_000 });
    expect(silenceWindow({ rule: 'volume_drop', endsAt: '2026-11-21T09:00:00Z', reason: '' }, now).endsAt).toBe(now + 3_600_000);
  });
  it('names what is wrong', () => {
    const field = (b: object) => { try { silenceWindow({ reason: '', ...b }, now); } catch (e) { return (e as ApiError).field; } return null; };
    expect(field({ minutes: 5 })).toBe('merchantId');
    expect(field({ merchantId: '1' })).toBe('endsAt');
    expect(field({ merchantId: '1', minutes: 5, endsAt: '2026-11-21T09:00:00Z' })).toBe('minutes');
    expect(field({ merchantId: '1', startsAt: '2026-11-21T10:00:00Z', endsAt: '2026-11-21T09:00:00Z' })).toBe('endsAt');
  });
});

describe('status table', () => {
  it('prints every stage and its problem', () => {
    const text = formatStatus({
      time: '2026-11-21T08:00:00.000Z',
      slot: { name: 'riskmon', lagBytes: 2_097_152, active: true },
      gap: null,
      consumer: { group: 'g', topic: 't', lag: null, error: 'Kafka did not answer within 5000 ms' },
      watermark: { at: '2026-11-21T07:59:58.000Z', behindMs: 2000 },
      evaluator: { lastClosedMinute: '2026-11-21T07:58:00.000Z', behindMs: 60_000 },
      alerts: { firing: 3, pendingNotifications: 0 },
      webhooks: { pending: 2, failed: 1, oldestPendingAt: '2026-11-21T07:50:00.000Z' },
      backfill: {
        state: 'running', kind: 'initial', id: 'b', slot: 'riskmon', from: '2026-11-13T15:00:00.000Z', to: null, consistentPoint: '0/16B3748',
        startedAt: '2026-11-21T07:58:00.000Z', finishedAt: null, rows: 1_200_000, chunksDone: 3, chunks: 9, topicChanges: 0, rowsPerSecond: 300_000, progress: 1 / 3,
      },
    });
    expect(text).toContain('running (initial) 2026-11-13T15:00:00.000Z → now: 33% (3/9 chunks, 1,200,000 rows, 300,000 rows/s); no merchant is judged');
    expect(text).toContain('2.0 MiB behind');
    expect(text).toContain('! Kafka did not answer');
    expect(text).toContain('3 firing');
    expect(text).toContain('2 pending (oldest 2026-11-21T07:50:00.000Z), 1 failed (GET /api/webhooks?status=failed)');
  });
});

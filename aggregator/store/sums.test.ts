/**
 * The replay's sums (sums.ts: byte scanner, cells, tiers derived when written) against the live planner (plan.ts
 * buildPlan with the same chunks): the same messages must give the same hashes, fields, values, expiries, merchant
 * sets, position and counts. The messages mix what the fast path reads with what it leaves to decodeEvent.
 */
import { describe, expect, it } from 'vitest';
import { encodeEvent, heartbeat, type RowChange } from '../../lib/events.ts';
import { recordSetOf } from '../../lib/kafka/index.ts';
import { formatLsn } from '../../lib/lsn.ts';
import { referenceMapping } from '../../lib/mapping.ts';
import { DAY, HOUR, MINUTE } from '../../lib/time.ts';
import { encodeBucketFields, encodeWindowFields } from './counters.ts';
import { DayClock, keys } from './layout.ts';
import { buildPlan, candidateCache, emptyPlan, parsePosition, type Msg, type PlanContext } from './plan.ts';
import { RebuildSums } from './sums.ts';

const tz = 'Asia/Seoul';
const now = Date.parse('2026-11-21T12:00:00Z');
const clock = new DayClock(tz);
const dayFrom = clock.dayStart(now - DAY);
const from = { minute: dayFrom, hour: Math.floor(dayFrom / HOUR) * HOUR, day: dayFrom };
const ctx = (partition: number): PlanContext & { from: typeof from; candidates: (m: string) => number[] } => ({
  prefix: 'rm', partition, partitions: 12, hotShards: 8, mapping: referenceMapping, clock,
  retention: { minuteTtlMs: 2 * DAY, hourTtlMs: 36 * DAY, dayTtlMs: 400 * DAY }, windowKeepMinutes: 240,
  allowedLatenessMs: 5000, now, watermark: null, lastPosition: null, from, candidates: candidateCache(12, 8),
});

/** A seeded stream of messages: inserts, updates, deletes, cancels, heartbeats, duplicates and odd encodings. */
function messages(seed: number, n: number): Msg[] {
  let s = seed;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)];
  const out: Msg[] = [];
  let lsn = 0x1000000n, commit = now - 30 * HOUR;
  const rows: Record<string, string>[] = [];
  for (let i = 0; i < n; i++) {
    lsn += 0x80n;
    commit += Math.floor(rnd() * 60_000);
    const base = { v: 1 as const, lsn: formatLsn(lsn), seq: 0, commitTs: new Date(commit).toISOString(), xid: i };
    const r = rnd();
    let value: string;
    if (r < 0.05) value = encodeEvent(heartbeat(base.lsn, base.commitTs));
    else if (r < 0.07 && out.length) { out.push({ ...out[out.length - 1], offset: String(i) }); continue; } // a re-published copy
    else {
      // transaction times: mostly near the commit, some late (hours), some before the reset range, odd forms
      const at = commit - (rnd() < 0.1 ? Math.floor(rnd() * 40 * HOUR) : Math.floor(rnd() * 120_000));
      const time = rnd() < 0.05 ? new Date(at).toISOString().replace('.000Z', 'Z').replace(/\.\d+Z/, '+00:00') : new Date(at).toISOString();
      const merchant = rnd() < 0.5 ? pick(['1', '2', '3', '4', '5']) : String(1 + Math.floor(rnd() * 300));
      const amount = rnd() < 0.02 ? '12345678901234567' : rnd() < 0.02 ? '3000000000' : String(1 + Math.floor(rnd() * 100_000));
      const cancel = rnd() < 0.2;
      const row: Record<string, string> = cancel
        ? { cancel_id: String(i), payment_id: String(i), merchant_id: merchant, amount, canceled_at: time }
        : { payment_id: String(i), merchant_id: merchant, amount, approved_at: time, note: rnd() < 0.05 ? 'with "quotes"' : 'x' };
      const table = cancel ? 'public.payment_cancels' : rnd() < 0.03 ? 'public.other' : 'public.payments';
      const prev = rows.length && rnd() < 0.25 ? pick(rows) : null;
      let e: RowChange;
      if (prev && rnd() < 0.5) {
        const moved = { ...prev, amount: rnd() < 0.3 ? prev.amount : String(1 + Math.floor(rnd() * 1000)) };
        e = { ...base, table: 'approved_at' in prev ? 'public.payments' : 'public.payment_cancels', op: 'update', row: moved, old: prev };
      } else if (prev) {
        e = { ...base, table: 'approved_at' in prev ? 'public.payments' : 'public.payment_cancels', op: 'delete', row: null, old: rnd() < 0.05 ? null : prev };
      } else {
        e = { ...base, table, op: 'insert', row, old: null };
        rows.push(row);
      }
      value = encodeEvent(e);
      if (rnd() < 0.03) value = value.replace('"seq":0', '"seq": 0'); // valid JSON the scanner leaves to JSON.parse
      if (rnd() < 0.02) value = value.replace(/"amount":"(\d+)"/, '"amount":$1'); // an amount as a JSON number
      if (rnd() < 0.01) value = value.replace('"merchant_id":"', '"merchant_id":null,"x":"');
      if (rnd() < 0.01) value = value.slice(0, 40); // not JSON
    }
    out.push({ offset: String(i), value: Buffer.from(value) });
  }
  return out;
}

type Hashes = Map<string, { expiry: number; fields: Map<string, string> }>;

/** The live planner over the same chunks, flushed like the old rebuild: hashes written, window horizon applied. */
function planned(msgs: Msg[], c: ReturnType<typeof ctx>, chunk: number) {
  const plan = emptyPlan();
  let wm: number | null = null, pos = null;
  for (let i = 0; i < msgs.length; i += chunk) {
    buildPlan(msgs.slice(i, i + chunk), { ...c, watermark: wm, lastPosition: pos }, plan);
    pos = parsePosition(plan.position) ?? pos;
    if (plan.watermark !== null && (wm === null || plan.watermark > wm)) wm = plan.watermark;
  }
  const horizon = wm === null ? -Infinity : Math.floor(wm / MINUTE) - c.windowKeepMinutes;
  const hashes: Hashes = new Map();
  for (const [key, h] of plan.hashes) {
    if (h.kind === 'window' && Number(key.slice(keys.windowPrefix('rm', c.partition).length)) < horizon) continue;
    const args: string[] = [];
    for (const [f, d] of h.fields) if (h.kind === 'window') encodeWindowFields(args, f, d); else encodeBucketFields(args, Number(f), d);
    if (args.length) hashes.set(key, { expiry: plan.expires.get(key)!, fields: pairs(args) });
  }
  return { hashes, merchants: plan.merchants, foreign: plan.foreign, position: pos, watermark: wm, changes: plan.changes, facts: plan.facts, horizon };
}

function summed(msgs: Msg[], c: ReturnType<typeof ctx>, chunk: number, horizon: number) {
  const sums = new RebuildSums(c, null, null);
  const records = recordSetOf(msgs.map((m) => m.value));
  for (let i = 0; i < msgs.length; i += chunk) sums.addChunk(records, i, Math.min(i + chunk, msgs.length));
  const hashes: Hashes = new Map();
  const merchants = new Set<string>(), foreign = new Set<string>();
  for (const e of sums.entries(horizon, (m) => { merchants.add(m); if (!c.candidates(m).includes(c.partition)) foreign.add(m); })) {
    expect(hashes.has(e.key)).toBe(false);
    hashes.set(e.key, { expiry: e.expiry, fields: pairs(bulkStrings(e.fields.take().bytes)) });
  }
  return { hashes, merchants, foreign, position: sums.position, watermark: sums.watermark, changes: sums.changes, facts: sums.facts };
}

/** The RESP bulk strings of a RespWriter's bytes. */
function bulkStrings(b: Buffer): string[] {
  const out: string[] = [];
  for (let at = 0; at < b.length;) {
    const eol = b.indexOf('\r\n', at);
    const n = Number(b.toString('latin1', at + 1, eol));
    out.push(b.toString('utf8', eol + 2, eol + 2 + n));
    at = eol + 4 + n;
  }
  return out;
}

function pairs(args: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < args.length; i += 2) m.set(args[i], args[i + 1]);
  return m;
}

describe('RebuildSums', () => {
  it.each([[1, 3000, 512], [2, 5000, 97], [3, 800, 1]])('gives the live planner\'s fields for the same messages (seed %i, %i messages, chunks of %i)', (seed, n, chunk) => {
    const msgs = messages(seed, n);
    // partition 3: tiers that have expired where the window index has not (merchants touched by it alone)
    for (const c of [ctx(0), ctx(5), { ...ctx(3), retention: { minuteTtlMs: -30 * HOUR, hourTtlMs: -300 * DAY, dayTtlMs: -300 * DAY } }]) {
      const want = planned(msgs, c, chunk);
      const got = summed(msgs, c, chunk, want.horizon);
      expect(want.hashes.size).toBeGreaterThan(100);
      expect(got.hashes).toEqual(want.hashes);
      expect(got.merchants).toEqual(want.merchants);
      expect(got.foreign).toEqual(want.foreign);
      expect(got.position).toEqual(want.position);
      expect(got.watermark).toBe(want.watermark);
      expect(got.changes).toBe(want.changes);
      expect(got.facts).toBe(want.facts);
    }
  });

  it('sums amounts past 2^53 exactly', () => {
    const c = ctx(0);
    const at = new Date(now - HOUR).toISOString();
    const msgs = [1, 2, 3].map((i): Msg => ({
      offset: String(i),
      value: Buffer.from(encodeEvent({ v: 1, lsn: `0/${i}`, seq: 0, commitTs: at, xid: i, table: 'public.payments', op: 'insert', old: null,
        row: { payment_id: String(i), merchant_id: '7', amount: '4503599627370497', approved_at: at } })),
    }));
    const want = planned(msgs, c, 512);
    const got = summed(msgs, c, 512, want.horizon);
    expect(got.hashes).toEqual(want.hashes);
    expect([...got.hashes.values()].some((h) => [...h.fields.values()].includes('13510798882111491'))).toBe(true);
  });
});

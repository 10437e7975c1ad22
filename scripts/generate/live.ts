/**
 * `generate live`: commits like an OLTP application — every payment and every cancel is its own autocommit
 * INSERT, over a pool of connections — at a requested rate held by a token bucket. When the database cannot take
 * the rate, the generator never queues more than one statement per connection: tokens beyond 200 ms of backlog
 * are dropped and counted as `missed`, and the achieved rate is what is reported.
 *
 * Late rows: a share of rows (default 2%) carries a transaction time 1 s to 2 min before the moment the generator
 * issues it, as a payment server with a slow retry or a batch would.
 *
 * Payouts (payouts.ts): at start and every minute, each local day that has ended (today's two predecessors at most)
 * gets its payouts from the tables, once (derived ids). A bust_out merchant cancels its earlier payments, read from
 * the database at start (the newest 20,000 not cancelled).
 */
import pg from 'pg';
import { CancelBook } from './cancel-book.ts';
import { systemClock } from '../../lib/clock.ts';
import { defaultHolidays } from '../../lib/holidays-kr.ts';
import { MINUTE } from '../../lib/time.ts';
import { sampleAmount, sampleCancelAmount, weekAcceptance } from './distribution.ts';
import { ensureIdState, IdBlocks, reserveIds } from './ids.ts';
import { assertReferenceSchema, ensureMerchants } from './merchants.ts';
import { DEFAULT_SETTLEMENT_DAYS, localMidnight, writeDayPayouts } from './payouts.ts';
import { hash32, Rng } from './random.ts';
import { ScenarioSet, type Scenario } from './scenarios.ts';
import { DEFAULT_MERCHANTS } from './backfill.ts';
import { Workload } from './workload.ts';

export interface LiveOptions {
  tps: number;
  /** Seconds; unset runs until stop(). */
  durationS?: number;
  connections?: number;
  seed?: number;
  merchants?: number;
  scenarios?: readonly Scenario[];
  /** Share of rows whose transaction time lies 1 s .. maxLateMs before they are issued. */
  lateShare?: number;
  maxLateMs?: number;
  reportEveryMs?: number;
  onReport?: (r: LiveReport) => void;
  /** Called once with the first failed INSERT (later failures are only counted). */
  onError?: (err: unknown) => void;
  /** Weekday shapes by category and public holidays in zone `tz` (distribution.ts WEEK_SHAPE); default flat. */
  weekShapes?: boolean;
  tz?: string;
  holidays?: ReadonlySet<string>;
  /** Payouts: local day D paid at the start of day D+N (payouts.ts); 0 writes none. Default 2. */
  settlementDays?: number;
  /** "Now" for transaction times and due payouts (lib/clock.ts); default the system clock. */
  now?: () => number;
}

export interface LiveStats {
  seconds: number;
  requestedTps: number;
  achievedTps: number;
  payments: number;
  cancels: number;
  partialCancels: number;
  late: number;
  /** payout rows written for the days that ended */
  payouts: number;
  errors: number;
  /** Tokens dropped because every connection was busy (the database could not take the rate). */
  missed: number;
}

export interface LiveReport extends LiveStats { lastTps: number }

export interface LiveRun {
  /** Resolves when the duration is over (or after stop()) and every issued statement has finished. */
  readonly done: Promise<LiveStats>;
  stop(): Promise<LiveStats>;
  stats(): LiveStats;
}

const PAY_SQL = 'INSERT INTO payments (payment_id, merchant_id, amount, approved_at) VALUES ($1, $2, $3, $4)';
const CANCEL_SQL = 'INSERT INTO payment_cancels (cancel_id, payment_id, merchant_id, amount, canceled_at) VALUES ($1, $2, $3, $4, $5)';

export async function live(pgUrl: string, opts: LiveOptions): Promise<LiveRun> {
  const tps = opts.tps;
  if (!(tps > 0)) throw new Error(`tps must be positive, got ${tps}`);
  const n = opts.merchants ?? DEFAULT_MERCHANTS;
  const connections = opts.connections ?? 32;
  const lateShare = opts.lateShare ?? 0.02;
  const maxLateMs = opts.maxLateMs ?? 120_000;
  const scenarios = new ScenarioSet(opts.scenarios ?? []);
  const rng = new Rng(hash32(opts.seed ?? 1, 0x11fe));
  const clock = opts.now ?? systemClock;

  const admin = new pg.Client({ connectionString: pgUrl, application_name: 'riskmon-generate-live' });
  // A server restart ends this session: without a listener that would crash the process; the next id
  // reservation fails instead (counted as errors) and the caller starts a new run.
  admin.on('error', () => {});
  await admin.connect();
  let ids: IdBlocks;
  const settlementDays = opts.settlementDays ?? DEFAULT_SETTLEMENT_DAYS;
  const tz = opts.tz ?? (process.env.RISKMON_TZ || 'Asia/Seoul');
  const earlier = new Map<number, { id: number[]; amount: number[] }>();
  try {
    await assertReferenceSchema(admin, settlementDays > 0);
    for (const m of scenarios.bustOutMerchants) {
      const r = await admin.query(`SELECT payment_id::float8 AS id, amount::float8 AS amount FROM payments p WHERE merchant_id = $1
        AND NOT EXISTS (SELECT 1 FROM payment_cancels c WHERE c.merchant_id = p.merchant_id AND c.payment_id = p.payment_id)
        ORDER BY approved_at DESC LIMIT 20000`, [m]);
      earlier.set(m, { id: r.rows.map((x) => x.id), amount: r.rows.map((x) => x.amount) });
    }
    await ensureMerchants(pgUrl, n);
    await ensureIdState(admin);
    ids = new IdBlocks((count) => reserveIds(admin, count), 10_000);
    await ids.start();
  } catch (err) {
    await admin.end();
    throw err;
  }

  const w = new Workload(n);
  const book = new CancelBook(Float64Array.from(w.weights, (x) => x * tps * 86_400), w.cancelRate);
  const pool = new pg.Pool({ connectionString: pgUrl, max: connections, application_name: 'riskmon-generate-live' });
  pool.on('error', () => {}); // an idle client's error surfaces again on its next query

  const s = { payments: 0, cancels: 0, partialCancels: 0, late: 0, payouts: 0, errors: 0, missed: 0 };
  let inFlight = 0;
  let tokens = 0;
  let running = true;
  let firstError = true;
  const t0 = performance.now();
  let last = t0;
  let lastEnd = t0;
  let lastReportAt = t0;
  let lastReportCount = 0;
  const committed = () => s.payments + s.cancels;
  const stats = (): LiveStats => {
    const seconds = (lastEnd - t0) / 1000;
    return { ...s, seconds, requestedTps: tps, achievedTps: seconds > 0 ? committed() / seconds : 0 };
  };

  const failed = (err: unknown) => {
    s.errors++;
    if (firstError) { firstError = false; opts.onError?.(err); }
  };

  // The week's shapes, computed once a minute.
  const holidays = opts.holidays ?? new Set(defaultHolidays());
  let accept: { minute: number; a: Float64Array } | null = null;
  const acceptAt = (at: number): Float64Array | null => {
    if (!opts.weekShapes) return null;
    const minute = Math.floor(at / MINUTE) * MINUTE;
    if (accept?.minute !== minute) accept = { minute, a: weekAcceptance(minute, opts.tz ?? (process.env.RISKMON_TZ || 'Asia/Seoul'), holidays) };
    return accept.a;
  };

  async function one(): Promise<void> {
    let id = ids.take();
    while (id === null) { await ids.refill(); id = ids.take(); }
    const now = clock();
    const isLate = rng.next() < lateShare;
    const at = isLate ? now - rng.range(1000, maxLateMs) : now;
    let m = w.sampleMerchantIn(rng, acceptAt(at));
    if (!scenarios.empty) for (let tries = 0; tries < 100 && rng.next() >= scenarios.volumeFactor(m, at); tries++) m = w.sampleMerchant(rng);
    const bust = scenarios.empty ? 0 : scenarios.bustOut(m, at);
    if (bust > 0) {
      // a bust-out: no sale, `bust` cancels of earlier payments in one statement
      const e = earlier.get(m)!;
      const pids: number[] = [], amounts: number[] = [], cids: number[] = [id];
      for (let j = 0; j < bust && e.id.length; j++) {
        const k = rng.int(e.id.length);
        pids.push(e.id[k]); amounts.push(e.amount[k]);
        e.id[k] = e.id[e.id.length - 1]; e.amount[k] = e.amount[e.amount.length - 1]; e.id.pop(); e.amount.pop();
      }
      while (cids.length < pids.length) { let c = ids.take(); while (c === null) { await ids.refill(); c = ids.take(); } cids.push(c); }
      if (pids.length) {
        await pool.query(`INSERT INTO payment_cancels (cancel_id, payment_id, merchant_id, amount, canceled_at)
          SELECT c, p, $3, a, $5 FROM unnest($1::bigint[], $2::bigint[], $4::bigint[]) AS x(c, p, a)`, [cids.slice(0, pids.length), pids, m, amounts, new Date(at).toISOString()]);
        s.cancels += pids.length;
      }
      if (isLate) s.late++;
      return;
    }
    if (book.canPay(m)) {
      const e = book.take(rng, m);
      const amount = sampleCancelAmount(rng, e.amount);
      const canceledAt = Math.max(at, e.at + 1);
      await pool.query({ name: 'rm_gen_cancel', text: CANCEL_SQL, values: [id, e.paymentId, m, amount, new Date(canceledAt).toISOString()] });
      s.cancels++;
      if (amount < e.amount) s.partialCancels++;
    } else {
      const amount = sampleAmount(rng, w.mu[m - 1], w.sigma[m - 1]);
      const cancelDue = rng.next() < Math.min(1, w.cancelRate[m - 1] * scenarios.cancelFactor(m, at));
      await pool.query({ name: 'rm_gen_pay', text: PAY_SQL, values: [id, m, amount, new Date(at).toISOString()] });
      s.payments++;
      // Only a committed payment can be cancelled (the foreign key, and realism).
      book.add(rng, m, id, amount, at);
      if (cancelDue) book.owe(m);
    }
    if (isLate) s.late++;
  }

  let resolveDone!: (st: LiveStats) => void;
  const done = new Promise<LiveStats>((r) => { resolveDone = r; });
  let timer: NodeJS.Timeout | null = null;

  // payouts of the local days that ended: checked at start and every minute, each day once
  const paidDays = new Set<number>();
  let payoutTimer: NodeJS.Timeout | null = null;
  let payoutRun: Promise<void> = Promise.resolve();
  const payDueDays = () => {
    payoutRun = payoutRun.then(async () => {
      const today = localMidnight(clock(), 0, tz);
      for (const d of [localMidnight(today, -2, tz), localMidnight(today, -1, tz)]) {
        if (paidDays.has(d)) continue;
        s.payouts += await writeDayPayouts(admin, d, settlementDays, tz);
        paidDays.add(d);
      }
    }).catch(failed);
  };
  if (settlementDays > 0) {
    payDueDays();
    payoutTimer = setInterval(payDueDays, 60_000);
  }

  const finish = async () => {
    if (payoutTimer) clearInterval(payoutTimer);
    await payoutRun;
    while (inFlight > 0) await new Promise((r) => setTimeout(r, 5));
    lastEnd = performance.now();
    await pool.end().catch(() => {});
    await admin.end().catch(() => {});
    resolveDone(stats());
  };

  const tick = () => {
    const now = performance.now();
    tokens += ((now - last) / 1000) * tps;
    last = now;
    const cap = Math.max(1, tps * 0.2);
    if (tokens > cap) { s.missed += Math.floor(tokens - cap); tokens = cap; }
    while (tokens >= 1 && inFlight < connections) {
      tokens--;
      inFlight++;
      one().catch(failed).finally(() => { inFlight--; });
    }
    lastEnd = now;
    if (opts.onReport && now - lastReportAt >= (opts.reportEveryMs ?? 5000)) {
      const c = committed();
      opts.onReport({ ...stats(), lastTps: ((c - lastReportCount) * 1000) / (now - lastReportAt) });
      lastReportAt = now;
      lastReportCount = c;
    }
    if (opts.durationS !== undefined && now - t0 >= opts.durationS * 1000) running = false;
    if (running) timer = setTimeout(tick, 1);
    else void finish();
  };
  timer = setTimeout(tick, 0);

  return {
    done,
    stats,
    async stop() {
      if (running) {
        running = false;
        if (timer) clearTimeout(timer);
        void finish();
      }
      return done;
    },
  };
}

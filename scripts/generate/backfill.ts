/**
 * `generate backfill`: N days of history ending at `end`, written with COPY on a few connections in parallel.
 *
 * The stream is generated minute by minute in time order from one seeded PRNG, so the same seed gives the same
 * rows (ids aside: they come from the shared allocator). Payments of a minute join their merchant's cancel book
 * when the minute ends, so a cancel always refers to an earlier minute's payment (canceled_at > approved_at) of
 * the same merchant inside the window. Cancels are COPYed only after every payment COPY submitted before them has
 * committed (the foreign key), in chunks of the same size as payments, so a reader sees them interleaved in time.
 * Payouts (payouts.ts): each local day that ends inside the window is paid D+N, written after the rows.
 */
import pg from 'pg';
import { DAY, MINUTE } from '../../lib/time.ts';
import { CancelBook } from './cancel-book.ts';
import { CopyPool } from './copy-pool.ts';
import { defaultHolidays } from '../../lib/holidays-kr.ts';
import { expectedPerMinute, sampleAmount, sampleCancelAmount, sampleCount, weekAcceptance } from './distribution.ts';
import { ensureIdState, reserveIds } from './ids.ts';
import { assertReferenceSchema, ensureMerchants } from './merchants.ts';
import { DEFAULT_SETTLEMENT_DAYS, insertPayouts, localMidnight, PayoutLedger, type PayoutRow } from './payouts.ts';
import { hash32, Rng } from './random.ts';
import { ScenarioSet, type Scenario } from './scenarios.ts';
import { Workload } from './workload.ts';

export interface BackfillOptions {
  days: number;
  /** End of the window (exclusive), epoch ms; default now. */
  end?: number;
  seed?: number;
  merchants?: number;
  txPerDay?: number;
  scenarios?: readonly Scenario[];
  /** Zone of the daily curve; default RISKMON_TZ or Asia/Seoul. */
  tz?: string;
  /** Parallel COPY connections (default 2). */
  connections?: number;
  /** Weekday shapes by category and public holidays (distribution.ts WEEK_SHAPE); default flat weeks. */
  weekShapes?: boolean;
  /** The holidays of the week shapes (local dates); default the Korean public holidays (lib/holidays-kr.ts). */
  holidays?: ReadonlySet<string>;
  /** Payouts: local day D paid at the start of day D+N (payouts.ts); 0 writes none. Default 2. */
  settlementDays?: number;
  /** Rows per COPY (one transaction each). */
  chunkRows?: number;
  onProgress?: (p: BackfillProgress) => void;
}

export interface BackfillProgress { payments: number; cancels: number; seconds: number; rowsPerSecond: number; doneShare: number }

export interface BackfillStats {
  startMs: number;
  endMs: number;
  payments: number;
  cancels: number;
  partialCancels: number;
  /** payout rows written (a row already there is kept) */
  payouts: number;
  rows: number;
  seconds: number;
  rowsPerSecond: number;
}

export const DEFAULT_TX_PER_DAY = 3_000_000;
export const DEFAULT_MERCHANTS = 100_000;

/**
 * The foreign-key triggers cost more than half of a COPY's time (measured: 14.3 s vs 6.0 s per million payments).
 * The generator keeps the keys valid by construction (merchants first, cancels after their payments commit), so
 * a session allowed to (superuser) skips the triggers; elsewhere the statement is a no-op and the keys are checked.
 * Logical decoding is unaffected: the role changes which triggers fire, not what is written to the WAL.
 */
const SKIP_TRIGGERS = `DO $$ BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN SET session_replication_role = replica; END IF;
END $$`;

const SS = Array.from({ length: 60 }, (_, i) => String(i).padStart(2, '0'));
const MS3 = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));

export async function backfill(pgUrl: string, opts: BackfillOptions): Promise<BackfillStats> {
  const days = opts.days;
  if (!(days > 0)) throw new Error(`days must be positive, got ${days}`);
  const n = opts.merchants ?? DEFAULT_MERCHANTS;
  const txPerDay = opts.txPerDay ?? DEFAULT_TX_PER_DAY;
  const tz = opts.tz ?? (process.env.RISKMON_TZ || 'Asia/Seoul');
  const endMs = opts.end ?? Date.now();
  const startMs = endMs - Math.round(days * DAY);
  const chunkRows = opts.chunkRows ?? 50_000;
  const scenarios = new ScenarioSet(opts.scenarios ?? []);
  const holidays = opts.holidays ?? new Set(defaultHolidays());
  const rng = new Rng(hash32(opts.seed ?? 1, 0xbac));

  const admin = new pg.Client({ connectionString: pgUrl, application_name: 'riskmon-generate-backfill' });
  await admin.connect();
  // A generator's rows are reproducible: losing the last commits in a server crash costs nothing, so skip the
  // per-commit WAL flush.
  const pool = await CopyPool.open(pgUrl, opts.connections ?? 2, ['SET synchronous_commit = off', SKIP_TRIGGERS]).catch(async (e) => { await admin.end(); throw e; });
  try {
    await assertReferenceSchema(admin, (opts.settlementDays ?? DEFAULT_SETTLEMENT_DAYS) > 0);
    await ensureMerchants(pgUrl, n);
    await ensureIdState(admin);

    const w = new Workload(n);
    const daily = Float64Array.from(w.weights, (x) => x * txPerDay);
    const book = new CancelBook(daily, w.cancelRate);
    const settlementDays = opts.settlementDays ?? DEFAULT_SETTLEMENT_DAYS;
    const ledger = settlementDays > 0 ? new PayoutLedger(n, settlementDays, tz) : null;
    const payoutRows: PayoutRow[] = [];
    // bust_out merchants: every payment they made, for the cancels of earlier (paid-out) payments
    const earlier = new Map<number, { id: number[]; amount: number[] }>(scenarios.bustOutMerchants.map((m) => [m, { id: [], amount: [] }]));

    // Ids in blocks of ~one chunk's worth; a block is reserved under a row lock, so a live run can go on at once.
    const ID_BLOCK = 1_000_000;
    let nextId = 0;
    let idEnd = 0;
    const takeId = async () => {
      if (nextId >= idEnd) { nextId = await reserveIds(admin, ID_BLOCK); idEnd = nextId + ID_BLOCK; }
      return nextId++;
    };

    let payText = '';
    let payRows = 0;
    let cancelText = '';
    let cancelRows = 0;
    let payments = 0;
    let cancels = 0;
    let partial = 0;
    const submittedPayments: Promise<void>[] = [];
    const t0 = performance.now();
    let lastReport = t0;

    const flushPayments = async () => {
      if (!payRows) return;
      submittedPayments.push((await pool.submit('payments (payment_id, merchant_id, amount, approved_at)', payText)).committed);
      payText = ''; payRows = 0;
    };
    const flushCancels = async () => {
      if (!cancelRows) return;
      await flushPayments();
      // The foreign key: the payments a cancel refers to must be committed first.
      await Promise.all(submittedPayments.splice(0));
      await pool.submit('payment_cancels (cancel_id, payment_id, merchant_id, amount, canceled_at)', cancelText);
      cancelText = ''; cancelRows = 0;
    };

    // Payments of the current minute, offered to the cancel book when the minute ends.
    let pendM = new Int32Array(8192);
    let pendId = new Float64Array(8192);
    let pendAmt = new Float64Array(8192);
    let pendAt = new Float64Array(8192);
    const firstMinute = Math.floor(startMs / MINUTE) * MINUTE;
    const totalMinutes = Math.ceil((endMs - firstMinute) / MINUTE);
    let day = localMidnight(firstMinute, 0, tz);
    let nextMidnight = localMidnight(firstMinute, 1, tz);

    for (let mi = 0; mi < totalMinutes; mi++) {
      const minute = firstMinute + mi * MINUTE;
      if (minute >= nextMidnight) {
        if (ledger) for (const r of ledger.endDay(day)) payoutRows.push(r);
        day = nextMidnight;
        nextMidnight = localMidnight(day, 1, tz);
      }
      const prefix = new Date(minute).toISOString().slice(0, 17);
      const count = sampleCount(rng, expectedPerMinute(minute, txPerDay, tz));
      const accept = opts.weekShapes ? weekAcceptance(minute, tz, holidays) : null;
      if (count > pendM.length) {
        const size = count * 2;
        pendM = new Int32Array(size); pendId = new Float64Array(size); pendAmt = new Float64Array(size); pendAt = new Float64Array(size);
      }
      let pend = 0;
      for (let k = 0; k < count; k++) {
        const off = rng.int(MINUTE);
        const t = minute + off;
        let m = w.sampleMerchantIn(rng, accept);
        if (!scenarios.empty) {
          // A dropped or stopped merchant's share goes to others, so the day's total stays as asked.
          for (let tries = 0; tries < 100 && rng.next() >= scenarios.volumeFactor(m, t); tries++) m = w.sampleMerchant(rng);
        }
        const amount = sampleAmount(rng, w.mu[m - 1], w.sigma[m - 1]);
        const rate = Math.min(1, w.cancelRate[m - 1] * (scenarios.empty ? 1 : scenarios.cancelFactor(m, t)));
        const cancelDue = rng.next() < rate;
        if (t < startMs || t >= endMs) continue; // drawn anyway, so the stream does not depend on the edges
        const bust = scenarios.empty ? 0 : scenarios.bustOut(m, t);
        if (bust > 0) {
          // a bust-out: no sale, `bust` cancels of earlier payments (random ones: most were paid out already)
          const e = earlier.get(m)!;
          const ts = `${prefix}${SS[Math.floor(off / 1000)]}.${MS3[off % 1000]}Z`;
          for (let j = 0; j < bust && e.id.length; j++) {
            const k = rng.int(e.id.length);
            const pid = e.id[k], amt = e.amount[k];
            e.id[k] = e.id[e.id.length - 1]; e.amount[k] = e.amount[e.amount.length - 1]; e.id.pop(); e.amount.pop();
            const cidv = takeIdFast();
            const cid = typeof cidv === 'number' ? cidv : await cidv;
            cancelText += `${cid}\t${pid}\t${m}\t${amt}\t${ts}\n`;
            cancelRows++; cancels++;
            ledger?.cancel(m, amt);
          }
          if (cancelRows >= chunkRows) await flushCancels();
          continue;
        }
        const idv = takeIdFast();
        const id = typeof idv === 'number' ? idv : await idv;
        const ts = `${prefix}${SS[Math.floor(off / 1000)]}.${MS3[off % 1000]}Z`;
        payText += `${id}\t${m}\t${amount}\t${ts}\n`;
        payRows++; payments++;
        pendM[pend] = m; pendId[pend] = id; pendAmt[pend] = amount; pendAt[pend] = t; pend++;
        ledger?.approve(m, amount);
        const past = earlier.get(m);
        if (past) { past.id.push(id); past.amount.push(amount); }
        if (cancelDue) book.owe(m);
        if (book.canPay(m)) {
          const e = book.take(rng, m);
          const amt = sampleCancelAmount(rng, e.amount);
          if (amt < e.amount) partial++;
          const cidv = takeIdFast();
          const cid = typeof cidv === 'number' ? cidv : await cidv;
          cancelText += `${cid}\t${e.paymentId}\t${m}\t${amt}\t${ts}\n`;
          cancelRows++; cancels++;
          ledger?.cancel(m, amt);
        }
        if (payRows >= chunkRows) await flushPayments();
        if (cancelRows >= chunkRows) await flushCancels();
      }
      for (let k = 0; k < pend; k++) book.add(rng, pendM[k], pendId[k], pendAmt[k], pendAt[k]);
      const now = performance.now();
      if (opts.onProgress && now - lastReport > 2000) {
        lastReport = now;
        const s = (now - t0) / 1000;
        opts.onProgress({ payments, cancels, seconds: s, rowsPerSecond: (payments + cancels) / s, doneShare: (mi + 1) / totalMinutes });
      }
    }
    await flushPayments();
    await flushCancels();
    await pool.drain();
    if (ledger) {
      while (nextMidnight <= endMs) {
        for (const r of ledger.endDay(day)) payoutRows.push(r);
        day = nextMidnight;
        nextMidnight = localMidnight(day, 1, tz);
      }
      await insertPayouts(admin, payoutRows);
    }
    const seconds = (performance.now() - t0) / 1000;
    return { startMs, endMs, payments, cancels, partialCancels: partial, payouts: payoutRows.length, rows: payments + cancels, seconds, rowsPerSecond: (payments + cancels) / seconds };

    // Synchronous while the block lasts (the common case); awaits only to reserve the next block.
    function takeIdFast(): number | Promise<number> {
      return nextId < idEnd ? nextId++ : takeId();
    }
  } finally {
    await pool.close();
    await admin.end();
  }
}

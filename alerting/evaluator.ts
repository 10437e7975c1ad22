/**
 * The evaluator service: follows the event-time watermark, evaluates every closed minute once (in order, across
 * restarts), turns evaluations into alert transitions, and commits everything of a minute in one transaction
 * (see store.ts); then publishes the transitions on Redis.
 *
 * Per minute it gets, for all merchants at once, the window totals and today's partial hour from the in-memory
 * window (window.ts: only the newly closed minute and slices changed since are read; the minute itself is read
 * ahead once the watermark passes its end, so its close only reads the late rows); per local day the baselines
 * (baseline.ts); per hour, today's full hours of the volume_drop merchants. The next day's baselines and the next
 * hour's full hours are loaded in the background as soon as the last minute of a day / hour is evaluated, so the
 * first minute of a day or hour does not wait for them. Memory holds the firing alerts and the signature of each
 * stored evaluation row, so only changed rows are written.
 *
 * The rules are the risk store's active version (risk-store/rules.ts), looked up before every minute: an activation
 * applies from the next closed minute, without a restart. The day-level reads are inputs.ts, shared with backtests.
 */
import type { RedisClient } from '../lib/redis.ts';
import type pg from 'pg';
import { backfillBlocksJudging, hasMoney, type BucketReader, type Exposure, type Settlement, type Totals } from '../aggregator/store/index.ts';
import { ExposureTracker, exposureInstant, PREPARE_BUDGET_MS, UNREAD_AT_CLOSE, type ExposureUpdate } from './exposure.ts';
import type { Logger } from '../lib/logger.ts';
import { backoffMs, RunState, type Service } from '../lib/service.ts';
import { dayStart, hourStart, iso, MINUTE } from '../lib/time.ts';
import { applyDecision, decideMinute, emptyMemory, firingMerchants, spikeCandidates, type Memory } from './decide.ts';
import { isReplay, lastClosedMinute, nextMinute, nextPollMs } from './closed.ts';
import { publishAlerts } from './fanout.ts';
import type { MerchantDirectory } from './directory.ts';
import { DayInputs } from './inputs.ts';
import type { DayBaselines } from './baseline.ts';
import { ShadowEvaluator } from './shadow.ts';
import { systemClock } from '../lib/clock.ts';
import * as metrics from './metrics.ts';
import { activationId, activeRules } from './risk-store/index.ts';
import { activeSilences } from './risk-store/index.ts';
import { commitMinute, isQuietSignature, loadState, ProgressConflict, storedReceivables } from './risk-store/index.ts';
import type { RuleName, RulesConfig } from './rules/config.ts';
import { WindowSums } from './window.ts';

/** The watermark is read this often while the next minute's close is near (closed.ts `nextPollMs`). */
const FINE_POLL_MS = 5;
/** The read ahead's time for merchants money at risk left unread after a start (after the settlement's ranges). */
const UNREAD_AHEAD_MS = 3000;
/** While waiting for the next minute to end: merchants left unread are read for at most this long per poll … */
const IDLE_READ_MS = 500;
/** … and not within this long before the minute's end (the read ahead starts there). */
const IDLE_MARGIN_MS = 3000;

export interface EvaluatorOptions {
  /** The rules while the risk store holds no active version (tests of the evaluator alone); else the active one. */
  rules: RulesConfig;
  tz: string;
  allowedLatenessMs: number;
  maxIngestLagMs: number;
  replayAfterMs: number;
  evalPollMs: number;
  /** Background reload of the day's baselines (default 15 min). */
  baselineRefreshMs?: number;
  maxCatchUpMinutes: number;
  evaluatorName: string;
  redisPrefix: string;
  /** Without a webhook every notification row is stored as suppressed ('slack not configured'). */
  slackEnabled: boolean;
  /** With RISKMON_ALERT_WEBHOOK_URL: each live, unsilenced transition also gets a webhook outbox row in the minute's commit. */
  alertWebhook?: boolean;
}

export interface EvaluatorDeps {
  reader: BucketReader;
  db: pg.Pool;
  /** For the fan-out; null publishes nothing (tests of the store alone). */
  redis: RedisClient | null;
  log: Logger;
  /** Wall clock, injectable for tests. */
  now?: () => number;
  /** Merchant categories for new merchants' cohorts (directory.ts); none: one cohort per size band. */
  directory?: MerchantDirectory;
  /** Told when `busy` changes (the backtest thread reads it from shared memory). */
  onBusy?: (busy: boolean) => void;
  /** Where settled-through times come from (the receivable rule and merchant_exposure); none: the rule is not judged. */
  settlement?: Settlement;
}

export interface MinuteReport {
  minute: number; replay: boolean; evaluations: number; transitions: number; rowsWritten: number; ruleVersion: string;
  /** total, and its parts: reading buckets (and baselines), rules and lifecycle, the PostgreSQL commit */
  ms: number; readMs: number; ruleMs: number; commitMs: number;
}

/** The buckets read for a minute may be from a rolled-back Redis (failover): nothing committed, the minute retried. */
export class StateRolledBack extends Error {
  override name = 'StateRolledBack';
}

export class Evaluator implements Service {
  readonly name = 'alerting-evaluator';
  readonly #state = new RunState();
  readonly #o: EvaluatorOptions;
  readonly #d: EvaluatorDeps;
  readonly #now: () => number;
  #loaded = false;
  #progress: number | null = null;
  /** The watermark last read (null: none yet). */
  #watermark: number | null = null;
  /** Firing alerts, stored evaluation signatures, and the merchants re-evaluated when absent (decide.ts). */
  #memory: Memory = emptyMemory();
  /** The activation whose rules are in use (null: none stored, `opts.rules`). */
  #activation: number | null = null;
  readonly #inputs: DayInputs;
  readonly #window: WindowSums;
  /** Set while a closed minute waits or is being evaluated: background work (backtests) yields to it. */
  #busy = false;
  readonly #shadow: ShadowEvaluator;
  /** The last finished backfill seen (its id); a new one makes everything read so far stale. */
  #backfillSeen: string | null | undefined = undefined;
  #waitingForBackfill = false;
  /** The minute whose window was last read ahead of its close. */
  #readAheadOf: number | null = null;
  /** performance.now() before which the idle time reads no merchant left unread (`#readUnreadIdle`) */
  #idleReadAfter = 0;
  /** The merchants that owe a receivable (exposure.ts); null: the reader cannot read money or no settlement given. */
  readonly #exposures: ExposureTracker | null;

  constructor(opts: EvaluatorOptions, deps: EvaluatorDeps) {
    this.#o = opts;
    this.#d = deps;
    this.#exposures = deps.settlement && hasMoney(deps.reader)
      ? new ExposureTracker(deps.reader, deps.settlement, async () => new Set((await storedReceivables(deps.db)).keys()))
      : null;
    this.#now = deps.now ?? systemClock;
    this.#window = new WindowSums(deps.reader, { recent: this.#exposures !== null });
    this.#inputs = new DayInputs(deps.reader, opts.rules, {
      tz: opts.tz, baselineRefreshMs: opts.baselineRefreshMs ?? 900_000, log: deps.log, now: this.#now, directory: deps.directory,
    });
    this.#shadow = new ShadowEvaluator({ tz: opts.tz, maxIngestLagMs: opts.maxIngestLagMs }, { reader: deps.reader, db: deps.db, log: deps.log.child({ part: 'shadow' }), now: this.#now, directory: deps.directory });
  }

  /** The rules in use now. */
  get rules(): RulesConfig { return this.#inputs.rules; }

  /** True while a closed minute is due or being evaluated. */
  get busy(): boolean { return this.#busy; }

  async run(): Promise<void> {
    let failures = 0;
    while (this.#state.shouldRun()) {
      try {
        const report = await this.evaluateNext();
        failures = 0;
        if (!report) await this.#state.sleep(nextPollMs(this.#watermark, this.#progress, this.#o.allowedLatenessMs, this.#o.evalPollMs, FINE_POLL_MS));
      } catch (err) {
        if (err instanceof ProgressConflict) this.#loaded = false;
        const wait = err instanceof StateRolledBack ? this.#o.evalPollMs : backoffMs(failures++, 500, 30_000);
        this.#d.log.warn({ err, retryInMs: wait }, 'evaluation failed; retrying the same minute');
        await this.#state.sleep(wait);
      }
    }
  }

  async stop(): Promise<void> { this.#state.stop(); }

  /** Evaluates the next closed minute if there is one; null when up to date. */
  async evaluateNext(): Promise<MinuteReport | null> {
    if (!this.#loaded) await this.#load();
    if (await this.#backfillRunning()) return null;
    // Read before the watermark: a failover to a replica that missed writes between this and the final check
    // changes it (see #checkNotRolledBack).
    const epoch = await this.#d.reader.stateEpoch?.();
    const wm = await this.#d.reader.watermark();
    this.#watermark = wm;
    if (wm === null) return null;
    const closed = lastClosedMinute(wm, this.#o.allowedLatenessMs);
    const next = nextMinute(this.#progress, closed, this.#o.maxCatchUpMinutes);
    metrics.evaluatorLagSeconds.set(this.#progress === null ? 0 : Math.max(0, (closed - this.#progress) / 1000));
    if (!next) {
      await this.#readAhead(wm, epoch);
      await this.#readUnreadIdle(wm);
      return null;
    }
    if (next.skipped) this.#d.log.warn({ skipped: next.skipped, from: iso(next.minute) }, 'too far behind: skipping closed minutes');
    this.#busy = true;
    this.#d.onBusy?.(true);
    try {
      const seenAt = performance.now();
      await this.#followActivation();
      return await this.#evaluateMinute(next.minute, wm, epoch, seenAt);
    } finally {
      this.#busy = false;
      this.#d.onBusy?.(false);
    }
  }

  /**
   * Once the watermark passes the end of the next minute to evaluate, and before the allowed lateness closes it, the
   * window is read ahead (window.ts): the read at the close then fetches only the merchants written since (late
   * rows), so at the peak the bulk of the minute's read is off the alert's path. So are the histories of the minute's
   * new volume_spike candidates (thousands when traffic jumps at the day's peak), the ranges a coming settlement
   * takes off money at risk (exposure.ts `prepare`) and merchants money at risk left unread after a start
   * (`readUnread`), both up to a second before the lateness ends. Once per minute; a failure only leaves the work to the close.
   */
  async #readAhead(wm: number, epoch: string | undefined): Promise<void> {
    if (this.#progress === null || this.#readAheadOf === this.#progress + MINUTE) return;
    const M = this.#progress + MINUTE, end = M + MINUTE;
    if (wm < end) return;
    this.#readAheadOf = M;
    const rules = this.#inputs.rules;
    const hs = Math.max(hourStart(M), dayStart(M, this.#o.tz));
    this.#busy = true;
    this.#d.onBusy?.(true);
    const t0 = performance.now();
    try {
      const win = await this.#window.read(end - rules.windowMinutes * MINUTE, hs, end, epoch);
      // volume_spike's new candidates as of this read: their history is read now, not at the close (a late row that
      // makes one more leaves it to the close)
      await this.#profileSpikes(await this.#inputs.baselines(dayStart(M, this.#o.tz)), win.window);
      // the sums a coming settlement will take off money at risk (a daily one pays every merchant at once), and the
      // merchants left unread since a start, within what is left before the watermark closes M, less a second
      const closesIn = () => end + this.#o.allowedLatenessMs - wm - (performance.now() - t0) - 1000;
      if (closesIn() > 0 && this.#exposures) {
        await this.#exposures.prepare(Math.min(PREPARE_BUDGET_MS, closesIn()));
        if (closesIn() > 0) await this.#exposures.readUnread(Math.min(UNREAD_AHEAD_MS, closesIn()));
        metrics.exposureUnread.set(this.#exposures.unread.size);
      }
    } catch (err) {
      this.#d.log.warn({ err, minute: iso(M) }, 'reading the window ahead failed; the minute reads it when it closes');
    } finally {
      this.#busy = false;
      this.#d.onBusy?.(false);
    }
  }

  /**
   * While the next minute has not ended (until IDLE_MARGIN_MS before its end), reads merchants money at risk left
   * unread since a start, for at most IDLE_READ_MS per poll and half of the time: the bulk of them is read in the
   * minute's idle time, off the alert's path. A failure only leaves them for later.
   */
  async #readUnreadIdle(wm: number): Promise<void> {
    const x = this.#exposures;
    if (!x || !x.unread.size || this.#progress === null || performance.now() < this.#idleReadAfter) return;
    const until = this.#progress + 2 * MINUTE - IDLE_MARGIN_MS - wm;
    if (until <= 0) return;
    const t0 = performance.now();
    try {
      await x.readUnread(Math.min(IDLE_READ_MS, until));
      metrics.exposureUnread.set(x.unread.size);
    } catch (err) {
      this.#d.log.warn({ err }, 'reading money at risk of merchants left unread failed; retried at the next poll');
    } finally {
      // at most half of the waiting time: the aggregator shares the machine and Redis
      this.#idleReadAfter = 2 * performance.now() - t0;
    }
  }

  /** Reads the histories volume_spike's candidates in `window` need that `base` lacks (inputs.ts). */
  #profileSpikes(base: DayBaselines, window: ReadonlyMap<string, Totals>): Promise<void> {
    const m = this.#memory;
    return this.#inputs.profileSpikeCandidates(base, spikeCandidates(this.#inputs.rules, window, m.firing, m.tracked.volume_spike));
  }

  /**
   * A Redis failover to a replica that missed the last writes rolls buckets and watermark back together; they roll
   * forward again as the aggregator re-consumes. An evaluation that may have read such a state is dropped before
   * anything is committed: the watermark must still close M and the masters must be the same ones as before the
   * watermark was read. The minute is evaluated again once the watermark closes it again.
   */
  async #checkNotRolledBack(M: number, epoch: string | undefined): Promise<void> {
    const wm = await this.#d.reader.watermark();
    const now = await this.#d.reader.stateEpoch?.();
    if (wm === null || lastClosedMinute(wm, this.#o.allowedLatenessMs) < M || now !== epoch) {
      // both may hold totals read from the rolled-back state
      this.#inputs.forgetToday();
      this.#window.forget();
      throw new StateRolledBack(`Redis state moved back while minute ${iso(M)} was read (failover): evaluating it again once the watermark closes it`);
    }
  }

  /**
   * No judgement on incomplete data: while the cdc's first-start backfill runs, the live buckets of its range are
   * being written and every merchant's history in it is incomplete; while a range backfill swaps its new generation
   * in, partition by partition, some merchants' history is the old one and some the new. Meanwhile no minute is
   * evaluated (they are evaluated once it ends, in order). A range backfill that is still rebuilding aside leaves the
   * live buckets as they were, whole: judging goes on. When a backfill has finished since the last look, the
   * baselines, today's full hours and the window are dropped, so the next minute reads them all anew at once.
   */
  async #backfillRunning(): Promise<boolean> {
    const b = await this.#d.reader.backfill?.();
    if (!b) return false;
    if (backfillBlocksJudging(b)) {
      if (!this.#waitingForBackfill) this.#d.log.info({ from: b.from, to: b.to, kind: b.kind, swapping: b.swapping ?? false }, 'a history backfill is writing the live buckets: no merchant is judged until it is done');
      this.#waitingForBackfill = true;
      metrics.waitingForBackfill.set(1);
      return true;
    }
    if (b.state === 'running') {
      // rebuilding aside: judged on the live buckets, as before it started; what was read is kept until it is done
      this.#waitingForBackfill = false;
      metrics.waitingForBackfill.set(0);
      return false;
    }
    if (this.#backfillSeen !== b.id) {
      if (this.#backfillSeen !== undefined || this.#waitingForBackfill) {
        this.#d.log.info({ from: b.from, to: b.to, rows: b.rows }, 'a history backfill finished: baselines, today\'s hours and the window are read anew');
      }
      this.#inputs.forgetAll();
      this.#window.forget();
      this.#backfillSeen = b.id;
    }
    this.#waitingForBackfill = false;
    metrics.waitingForBackfill.set(0);
    return false;
  }

  async #load(): Promise<void> {
    const s = await loadState(this.#d.db, this.#o.evaluatorName);
    this.#progress = s.progress;
    this.#memory = emptyMemory(s.firing);
    this.#memory.signatures = s.evaluations;
    for (const [k, sig] of s.evaluations) {
      const [rule, merchantId] = k.split('\u0000') as [RuleName, string];
      if (!isQuietSignature(sig)) (this.#memory.tracked[rule] ??= new Set()).add(merchantId);
    }
    this.#loaded = true;
    this.#refreshFiringGauge();
    this.#d.log.info({ progress: s.progress === null ? null : iso(s.progress), firing: s.firing.length }, 'evaluator state loaded');
  }

  /**
   * Before each minute: the latest activation in the risk store. A new one applies from this minute on — an
   * activation committed while a minute is being evaluated applies from the next one, so every minute is decided by
   * exactly one version (recorded in evaluated_minutes with the minute).
   */
  async #followActivation(): Promise<void> {
    const id = await activationId(this.#d.db);
    if (id === null || id === this.#activation) return;
    const a = await activeRules(this.#d.db);
    if (!a) return;
    const previous = this.#inputs.rules.version;
    this.#inputs.setRules(a.config);
    this.#activation = a.activationId;
    if (a.version !== previous) this.#d.log.info({ version: a.version, previous, activatedBy: a.activatedBy }, 'rules version activated');
  }

  /** `seenAt`: when the watermark was found to close M (performance.now()), before the active rules were looked up. */
  async #evaluateMinute(M: number, watermark: number, epoch: string | undefined, seenAt: number): Promise<MinuteReport> {
    const t0 = performance.now();
    const { tz } = this.#o;
    const rules = this.#inputs.rules;
    const now = this.#now();
    const replay = isReplay(M, now, this.#o.replayAfterMs);
    const today = dayStart(M, tz);
    const end = M + MINUTE;
    const windowFrom = end - rules.windowMinutes * MINUTE;
    const hs = Math.max(hourStart(M), today);
    const ingestLagMs = now - watermark;

    // The baselines load only on a day's first minute when nothing loaded them ahead (a start); meanwhile the
    // window is read.
    const basePromise = this.#inputs.baselines(today);
    // when each read was done (ms after t0), for the log: which of them the minute waited for
    const readMs: Record<string, number> = {};
    const timed = <T>(name: string, p: Promise<T>) => p.then((v) => { readMs[name] = Math.round((performance.now() - t0) * 10) / 10; return v; });
    const [base, win, todayHours, silences] = await Promise.all([
      timed('baselines', basePromise),
      timed('window', this.#window.read(windowFrom, hs, end, epoch)),
      timed('hours', basePromise.then((b) => this.#inputs.todayFullHours(b, today, hs, firingMerchants(this.#memory.firing, 'volume_drop')))),
      timed('silences', activeSilences(this.#d.db)),
    ]);

    // volume_spike's candidates whose history is not read yet today (few after the day's first minutes), read while
    // money at risk is decided
    const spikeProfiles = timed('spikeProfiles', this.#profileSpikes(base, win.window));
    spikeProfiles.catch(() => {}); // awaited below; a failure of money at risk first must not leave it unhandled
    // money at risk at the minute's end: the merchants that owe, and those with a receivable alert still firing
    let exposure: ExposureUpdate | null = null;
    let exposures: Map<string, Exposure> | undefined;
    if (this.#exposures) {
      try {
        // merchants left unread are read off the alert's path, between live minutes; a replayed minute (catching up,
        // nothing sent) reads some itself
        exposure = await timed('exposure', this.#exposures.update(exposureInstant(M), this.#window.recent(), { unreadToRead: replay ? UNREAD_AT_CLOSE : 0 }));
      } catch (err) {
        this.#exposures.reset();
        throw err;
      }
      exposures = new Map(exposure.owing);
      const missing = firingMerchants(this.#memory.firing, 'receivable').filter((m) => !exposures!.has(m));
      for (const [m, e] of await this.#exposures.exposuresOf(missing, exposureInstant(M))) exposures.set(m, e);
    }
    await spikeProfiles;
    const t1 = performance.now();
    const d = decideMinute({
      minute: M, today, windowFrom, ingestLagMs, replay, rules, maxIngestLagMs: this.#o.maxIngestLagMs,
      slackEnabled: this.#o.slackEnabled, window: win.window, partialHour: win.hour, todayHours, baselines: base, silences,
      firing: this.#memory.firing, signatures: this.#memory.signatures, tracked: this.#memory.tracked, exposures,
    });
    const { transitions, rows } = d;

    const tDecided = performance.now();
    await this.#checkNotRolledBack(M, epoch);
    const t2 = performance.now();
    const committed = await commitMinute(this.#d.db, {
      name: this.#o.evaluatorName, previous: this.#progress, minute: M, transitions, clearCounts: d.clearCounts, evaluations: rows,
      ruleVersion: rules.version, ingestLagMs, alertWebhook: this.#o.alertWebhook ?? false, ...(exposure ? { exposures: exposure.write } : {}),
    }).catch((err) => { this.#exposures?.reset(); throw err; });
    if (exposure) {
      this.#exposures!.committed(exposure);
      metrics.exposureUnread.set(exposure.unread);
    }

    const t3 = performance.now();
    // Committed: now memory follows.
    this.#progress = M;
    const firingBefore = new Map(this.#memory.firing);
    applyDecision(this.#memory, d, (key) => committed.fired.get(key)!);
    const publishedAt = this.#now();
    if (this.#d.redis) {
      await publishAlerts(this.#d.redis, this.#o.redisPrefix, committed.messages)
        .catch((err) => this.#d.log.warn({ err }, 'publishing alert transitions failed (clients catch up by lastEventId)'));
    }

    const t4 = performance.now();
    const ms = t4 - t0;
    const stages = {
      // event time past the close when the watermark was read: how late the poll saw it (the watermark follows the clock)
      detect: watermark - (end + this.#o.allowedLatenessMs), ingest: ingestLagMs, read: t1 - seenAt, decide: tDecided - t1, check: t2 - tDecided, commit: t3 - t2, publish: t4 - t3,
    };
    if (!replay) for (const [stage, v] of Object.entries(stages)) metrics.evaluationStage.observe({ stage }, Math.max(0, v) / 1000);
    // The shadow version, after the live minute is out (it never delays a live alert).
    const tracker = this.#exposures;
    await this.#shadow.minute({
      minute: M, ingestLagMs, liveFiringBefore: firingBefore, liveWindow: { windowMinutes: rules.windowMinutes, window: win.window, hour: win.hour }, epoch,
      ...(exposure && tracker ? { exposures: { owing: exposure.owing, of: (ids: string[]) => tracker.exposuresOf(ids, exposureInstant(M)) } } : {}),
    });
    metrics.evaluationDuration.observe(ms / 1000);
    metrics.minutesEvaluated.inc({ replay: String(replay) });
    for (const [rule, byStatus] of Object.entries(d.counts)) {
      for (const [status, n] of Object.entries(byStatus)) metrics.evaluationsTotal.inc({ rule, status }, n);
    }
    for (const t of transitions) {
      metrics.transitionsTotal.inc({ rule: t.rule, kind: t.kind });
      if (!replay) metrics.transitionLatency.observe(Math.max(0, publishedAt - (M + MINUTE + this.#o.allowedLatenessMs)) / 1000);
    }
    this.#refreshFiringGauge();
    this.#inputs.prefetch(M, base, firingMerchants(this.#memory.firing, 'volume_drop'));
    if (transitions.length) {
      const stageMs = Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, Math.round(v * 10) / 10]));
      this.#d.log.info({ minute: iso(M), replay, stageMs, readMs, ...(exposure ? { exposureRead: exposure.recomputed, exposureChecked: exposure.checked, exposureUnread: exposure.unread } : {}), rowsWritten: rows.length, transitions: transitions.map((t) => `${t.kind} ${t.rule} ${t.merchantId}`) }, 'alert transitions');
    }
    return {
      minute: M, replay, evaluations: d.evaluated, transitions: transitions.length, rowsWritten: rows.length, ruleVersion: rules.version,
      ms, readMs: t1 - t0, ruleMs: t2 - t1, commitMs: t3 - t2,
    };
  }

  #refreshFiringGauge(): void {
    for (const rule of ['cancel_rate_spike', 'volume_drop', 'volume_spike'] as const) metrics.alertsFiring.set({ rule, state: 'firing' }, firingMerchants(this.#memory.firing, rule).length);
  }
}

/**
 * The evaluator service: follows the event-time watermark, evaluates every closed minute once (in order, across
 * restarts), turns evaluations into alert transitions, and commits everything of a minute in one transaction
 * (see store.ts); then publishes the transitions on Redis.
 *
 * Per minute it gets, for all merchants at once, the window totals and today's partial hour from the in-memory
 * window (window.ts: only the newly closed minute and slices changed since are read); per local day the baselines
 * (baseline.ts); per hour, today's full hours of the volume_drop merchants. The next day's baselines and the next
 * hour's full hours are loaded in the background as soon as the last minute of a day / hour is evaluated, so the
 * first minute of a day or hour does not wait for them. Memory holds the firing alerts and the signature of each
 * stored evaluation row, so only changed rows are written.
 */
import type { Redis } from 'ioredis';
import type pg from 'pg';
import type { BucketReader, Totals } from '../aggregator/store/index.ts';
import type { Logger } from '../lib/logger.ts';
import { backoffMs, RunState, type Service } from '../lib/service.ts';
import { dayStart, hourStart, iso, MINUTE } from '../lib/time.ts';
import { loadDayBaselines, type DayBaselines } from './baseline.ts';
import { decideMinute, firingMerchants } from './decide.ts';
import { isReplay, lastClosedMinute, nextMinute } from './closed.ts';
import { publishAlerts } from './fanout.ts';
import * as metrics from './metrics.ts';
import { activeSilences } from './silences.ts';
import { commitMinute, isQuietSignature, keyOf, loadState, ProgressConflict, type FiringAlert } from './store.ts';
import { paramsFor, type RuleName, type RulesConfig } from './rules/config.ts';
import { WindowSums } from './window.ts';

export interface EvaluatorOptions {
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
}

export interface EvaluatorDeps {
  reader: BucketReader;
  db: pg.Pool;
  /** For the fan-out; null publishes nothing (tests of the store alone). */
  redis: Redis | null;
  log: Logger;
  /** Wall clock, injectable for tests. */
  now?: () => number;
}

export interface MinuteReport {
  minute: number; replay: boolean; evaluations: number; transitions: number; rowsWritten: number;
  /** total, and its parts: reading buckets (and baselines), rules and lifecycle, the PostgreSQL commit */
  ms: number; readMs: number; ruleMs: number; commitMs: number;
}

export class Evaluator implements Service {
  readonly name = 'alerting-evaluator';
  readonly #state = new RunState();
  readonly #o: EvaluatorOptions;
  readonly #d: EvaluatorDeps;
  readonly #now: () => number;
  #loaded = false;
  #progress: number | null = null;
  #firing = new Map<string, FiringAlert>();
  #signatures = new Map<string, string>();
  /** Merchants whose last evaluation was more than "too little activity" / "not eligible": re-evaluated when absent. */
  #tracked: Record<RuleName, Set<string>> = { cancel_rate_spike: new Set(), volume_drop: new Set() };
  #baselines: DayBaselines | null = null;
  #baselinesAt = 0;
  #baselinesLoading: Promise<void> | null = null;
  /** The next day's baselines, loading since the last minute of the previous day was evaluated. */
  #nextBaselines: { today: number; promise: Promise<DayBaselines> } | null = null;
  #todayHours: { key: string; totals: Promise<Map<string, Totals>> } | null = null;
  readonly #window: WindowSums;

  constructor(opts: EvaluatorOptions, deps: EvaluatorDeps) {
    this.#o = opts;
    this.#d = deps;
    this.#now = deps.now ?? Date.now;
    this.#window = new WindowSums(deps.reader);
  }

  async run(): Promise<void> {
    let failures = 0;
    while (this.#state.shouldRun()) {
      try {
        const report = await this.evaluateNext();
        failures = 0;
        if (!report) await this.#state.sleep(this.#o.evalPollMs);
      } catch (err) {
        if (err instanceof ProgressConflict) this.#loaded = false;
        const wait = backoffMs(failures++, 500, 30_000);
        this.#d.log.warn({ err, retryInMs: wait }, 'evaluation failed; retrying the same minute');
        await this.#state.sleep(wait);
      }
    }
  }

  async stop(): Promise<void> { this.#state.stop(); }

  /** Evaluates the next closed minute if there is one; null when up to date. */
  async evaluateNext(): Promise<MinuteReport | null> {
    if (!this.#loaded) await this.#load();
    const wm = await this.#d.reader.watermark();
    if (wm === null) return null;
    const closed = lastClosedMinute(wm, this.#o.allowedLatenessMs);
    const next = nextMinute(this.#progress, closed, this.#o.maxCatchUpMinutes);
    metrics.evaluatorLagSeconds.set(this.#progress === null ? 0 : Math.max(0, (closed - this.#progress) / 1000));
    if (!next) return null;
    if (next.skipped) this.#d.log.warn({ skipped: next.skipped, from: iso(next.minute) }, 'too far behind: skipping closed minutes');
    return this.#evaluateMinute(next.minute, wm);
  }

  async #load(): Promise<void> {
    const s = await loadState(this.#d.db, this.#o.evaluatorName);
    this.#progress = s.progress;
    this.#firing = new Map(s.firing.map((a) => [keyOf(a.rule, a.merchantId), a]));
    this.#signatures = s.evaluations;
    this.#tracked = { cancel_rate_spike: new Set(), volume_drop: new Set() };
    for (const [k, sig] of s.evaluations) {
      const [rule, merchantId] = k.split('\u0000') as [RuleName, string];
      if (!isQuietSignature(sig)) this.#tracked[rule].add(merchantId);
    }
    this.#loaded = true;
    this.#refreshFiringGauge();
    this.#d.log.info({ progress: s.progress === null ? null : iso(s.progress), firing: s.firing.length }, 'evaluator state loaded');
  }

  async #evaluateMinute(M: number, watermark: number): Promise<MinuteReport> {
    const t0 = performance.now();
    const { rules, tz } = this.#o;
    const now = this.#now();
    const replay = isReplay(M, now, this.#o.replayAfterMs);
    const today = dayStart(M, tz);
    const end = M + MINUTE;
    const windowFrom = end - rules.windowMinutes * MINUTE;
    const hs = Math.max(hourStart(M), today);

    // The baselines load only on a day's first minute when nothing loaded them ahead (a start); meanwhile the
    // window is read.
    const basePromise = this.#dayBaselines(today);
    const [base, win, todayHours, silences] = await Promise.all([
      basePromise,
      this.#window.read(windowFrom, hs, end),
      basePromise.then((b) => this.#todayFullHours(b, today, hs)),
      activeSilences(this.#d.db),
    ]);

    const t1 = performance.now();
    const d = decideMinute({
      minute: M, today, windowFrom, ingestLagMs: now - watermark, replay, rules, maxIngestLagMs: this.#o.maxIngestLagMs,
      slackEnabled: this.#o.slackEnabled, window: win.window, partialHour: win.hour, todayHours, baselines: base, silences,
      firing: this.#firing, signatures: this.#signatures, tracked: this.#tracked,
    });
    const { transitions, rows } = d;

    const t2 = performance.now();
    const committed = await commitMinute(this.#d.db, {
      name: this.#o.evaluatorName, previous: this.#progress, minute: M, transitions, clearCounts: d.clearCounts, evaluations: rows,
    });

    const t3 = performance.now();
    // Committed: now memory follows.
    this.#progress = M;
    for (const r of rows) this.#signatures.set(r.key, r.sig);
    for (const t of d.trackedChanges) {
      if (t.quiet) this.#tracked[t.rule].delete(t.id);
      else this.#tracked[t.rule].add(t.id);
    }
    for (const [key, a] of d.nextFiring) {
      if (!a) this.#firing.delete(key);
      else this.#firing.set(key, { ...a, id: a.id || committed.fired.get(key)! });
    }
    const publishedAt = Date.now();
    if (this.#d.redis) {
      await publishAlerts(this.#d.redis, this.#o.redisPrefix, committed.messages)
        .catch((err) => this.#d.log.warn({ err }, 'publishing alert transitions failed (clients catch up by lastEventId)'));
    }

    const ms = performance.now() - t0;
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
    this.#prefetch(M, base);
    if (transitions.length) {
      this.#d.log.info({ minute: iso(M), replay, transitions: transitions.map((t) => `${t.kind} ${t.rule} ${t.merchantId}`) }, 'alert transitions');
    }
    return { minute: M, replay, evaluations: d.evaluated, transitions: transitions.length, rowsWritten: rows.length, ms, readMs: t1 - t0, ruleMs: t2 - t1, commitMs: t3 - t2 };
  }

  /**
   * After the last minute of a day or an hour: starts loading what the next minute needs anew (the next day's
   * baselines; the next hour's "today's full hours"), so its evaluation does not wait for it. Everything these
   * reads cover is closed by then (the watermark has passed the day's / hour's end plus the allowed lateness).
   */
  #prefetch(M: number, base: DayBaselines): void {
    const next = M + MINUTE;
    const nextDay = dayStart(next, this.#o.tz);
    if (nextDay === next) {
      if (this.#nextBaselines?.today !== nextDay) {
        const promise = this.#loadBaselines(nextDay);
        promise.catch(() => {}); // awaited (and reported) by the minute that needs it
        this.#nextBaselines = { today: nextDay, promise };
      }
    } else if (next === hourStart(next)) {
      void this.#todayFullHours(base, nextDay, next).catch(() => {});
    }
  }

  #firingMerchants(rule: RuleName): string[] {
    return firingMerchants(this.#firing, rule);
  }

  #refreshFiringGauge(): void {
    for (const rule of ['cancel_rate_spike', 'volume_drop'] as const) metrics.alertsFiring.set({ rule, state: 'firing' }, this.#firingMerchants(rule).length);
  }

  /**
   * Baselines of the 7 days before `today`, loaded when the day changes and reloaded in the background every
   * `baselineRefreshMs`, so history that arrives late (a backfill, a replay, corrections to past days) reaches
   * them without holding up a minute's evaluation.
   */
  async #dayBaselines(today: number): Promise<DayBaselines> {
    if (this.#baselines?.todayStart === today) {
      if (!this.#baselinesLoading && this.#now() - this.#baselinesAt >= (this.#o.baselineRefreshMs ?? 900_000)) {
        this.#baselinesLoading = this.#loadBaselines(today)
          .then((b) => { if (this.#baselines?.todayStart === today) this.#baselines = b; })
          .catch((err) => this.#d.log.warn({ err }, 'baseline refresh failed; keeping the previous baselines'))
          .finally(() => { this.#baselinesLoading = null; });
      }
      return this.#baselines;
    }
    const ahead = this.#nextBaselines?.today === today ? this.#nextBaselines.promise : null;
    this.#nextBaselines = null;
    this.#baselines = (ahead ? await ahead.catch(() => null) : null) ?? (await this.#loadBaselines(today));
    this.#todayHours = null;
    return this.#baselines;
  }

  async #loadBaselines(today: number): Promise<DayBaselines> {
    const t0 = performance.now();
    const { rules } = this.#o;
    this.#baselinesAt = this.#now();
    const b = await loadDayBaselines(this.#d.reader, today, rules.baselineDays, this.#o.tz, (id, avg) => {
      const p = paramsFor(rules, 'volume_drop', id);
      return p.enabled && avg >= p.minDailyAmount;
    });
    this.#d.log.info({ day: iso(today), merchants: b.totals.size, volumeEligible: b.profiles.size, ms: Math.round(performance.now() - t0) }, 'baselines loaded');
    return b;
  }

  /** Today's approved amounts of the volume_drop merchants over [00:00, start of M's hour), read once per hour. */
  #todayFullHours(base: DayBaselines, today: number, hs: number): Promise<Map<string, Totals>> {
    const key = `${today}/${hs}`;
    if (this.#todayHours?.key === key) return this.#todayHours.totals;
    const ids = [...new Set([...base.profiles.keys(), ...this.#firingMerchants('volume_drop')])];
    const totals = hs > today && ids.length ? this.#d.reader.totals(ids, today, hs) : Promise.resolve(new Map<string, Totals>());
    const entry = { key, totals };
    this.#todayHours = entry;
    // A failed read is not kept: the next minute reads again.
    totals.catch(() => { if (this.#todayHours === entry) this.#todayHours = null; });
    return totals;
  }
}

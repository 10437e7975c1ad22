/**
 * The day- and hour-level inputs of a minute's decision, shared by the live evaluator and the backtest so both read
 * them the same way: the day's baselines (7-day totals and the volume_drop merchants' hour profiles, which depend on
 * the rules' eligibility thresholds) and today's full hours of the volume_drop merchants (the eligible merchants and
 * those firing), read again whenever that set gains a merchant and, live, when the last read is `todayRefreshMs` old:
 * rows that arrive late for an earlier hour of today, and a merchant that became eligible mid-hour (a baseline reload,
 * a backfill), reach volume_drop within a minute, instead of it judging "today so far" on the current hour alone.
 *
 * The next day's baselines and the next hour's full hours can be loaded ahead (`prefetch`), so the first minute of
 * a day or hour does not wait for them; the live evaluator also reloads the baselines every `baselineRefreshMs`, so
 * late history reaches them (a backtest reads history as it stands and never needs to).
 */
import type { BucketReader, Totals } from '../aggregator/store/index.ts';
import type { Logger } from '../lib/logger.ts';
import { dayStart, hourStart, iso, MINUTE } from '../lib/time.ts';
import { loadDayBaselines, readProfiles, type DayBaselines } from './baseline.ts';
import type { MerchantDirectory } from './directory.ts';
import { paramsFor, type RulesConfig } from './rules/config.ts';

export interface DayInputOptions {
  tz: string;
  /** Background reload of the day's baselines; Infinity never reloads. */
  baselineRefreshMs: number;
  /** Today's full hours are read again once the last read is this old (default 50 s: every evaluated minute); Infinity: once per hour. */
  todayRefreshMs?: number;
  log: Logger;
  now: () => number;
  /** Merchant categories for cohorts, read with each day's baselines; none: one category for all. */
  directory?: MerchantDirectory;
}

/** What of a rules config the baselines depend on (volume_drop eligibility, the number of days). */
function baselineKey(r: RulesConfig): string {
  const overrides = Object.entries(r.overrides)
    .filter(([, o]) => o.volume_drop && ('enabled' in o.volume_drop || 'minDailyAmount' in o.volume_drop))
    .map(([m, o]) => [m, o.volume_drop!.enabled, o.volume_drop!.minDailyAmount]);
  return JSON.stringify([r.baselineDays, r.volume_drop.enabled, r.volume_drop.minDailyAmount, overrides, r.sameWeekdayWeeks, r.minSameWeekdays, r.holidays,
    r.cancel_rate_spike.minBaselineApprovals, r.cancel_rate_spike.minCohortMerchants]);
}

export class DayInputs {
  readonly #reader: BucketReader;
  readonly #o: DayInputOptions;
  #rules: RulesConfig;
  #baselines: DayBaselines | null = null;
  #baselinesAt = 0;
  #baselinesLoading: Promise<void> | null = null;
  /** The next day's baselines, loading since the last minute of the previous day was evaluated. */
  #nextBaselines: { today: number; promise: Promise<DayBaselines> } | null = null;
  #todayHours: { key: string; ids: Set<string>; at: number; totals: Promise<Map<string, Totals>> } | null = null;
  /** volume_spike candidates profiled during the day (a reload of the day's baselines profiles them again). */
  #spikeProfiled: { today: number; ids: Set<string> } | null = null;
  /** The directory's last answer (kept when a later read fails). */
  #categories: ReadonlyMap<string, string> = new Map();

  constructor(reader: BucketReader, rules: RulesConfig, o: DayInputOptions) {
    this.#reader = reader;
    this.#rules = rules;
    this.#o = o;
  }

  get rules(): RulesConfig { return this.#rules; }

  /** Switches the rules; baselines loaded under thresholds that no longer apply are dropped. */
  setRules(rules: RulesConfig): void {
    const changed = baselineKey(rules) !== baselineKey(this.#rules);
    this.#rules = rules;
    if (!changed) return;
    this.#baselines = null;
    this.#nextBaselines = null;
    this.#todayHours = null;
  }

  /** Drops today's full-hour totals read so far (they may come from a Redis state that rolled back). */
  forgetToday(): void {
    this.#todayHours = null;
  }

  /** Drops everything read (a backfill rewrote history): the next minute loads baselines and today's hours anew. */
  forgetAll(): void {
    this.#baselines = null;
    this.#nextBaselines = null;
    this.#todayHours = null;
    this.#spikeProfiled = null;
  }

  /**
   * Baselines of the days before `today`, loaded when the day changes (or taken from a prefetch) and, live,
   * reloaded in the background every `baselineRefreshMs` without holding up a minute.
   */
  async baselines(today: number): Promise<DayBaselines> {
    if (this.#baselines?.todayStart === today) {
      if (!this.#baselinesLoading && this.#o.now() - this.#baselinesAt >= this.#o.baselineRefreshMs) {
        const rules = this.#rules;
        this.#baselinesLoading = this.#load(today)
          .then((b) => { if (this.#baselines?.todayStart === today && this.#rules === rules) this.#baselines = b; })
          .catch((err) => this.#o.log.warn({ err }, 'baseline refresh failed; keeping the previous baselines'))
          .finally(() => { this.#baselinesLoading = null; });
      }
      return this.#baselines;
    }
    const ahead = this.#nextBaselines?.today === today ? this.#nextBaselines.promise : null;
    this.#nextBaselines = null;
    this.#baselines = (ahead ? await ahead.catch(() => null) : null) ?? (await this.#load(today));
    this.#todayHours = null;
    return this.#baselines;
  }

  async #load(today: number): Promise<DayBaselines> {
    const t0 = performance.now();
    const rules = this.#rules;
    this.#baselinesAt = this.#o.now();
    const alsoProfile = this.#spikeProfiled?.today === today ? [...this.#spikeProfiled.ids] : [];
    if (this.#o.directory) {
      this.#categories = await this.#o.directory().catch((err) => {
        this.#o.log.warn({ err }, 'merchant directory read failed; cohorts use the categories read before');
        return this.#categories;
      });
    }
    const b = await loadDayBaselines(this.#reader, today, rules.baselineDays, this.#o.tz, (id, avg) => {
      const p = paramsFor(rules, 'volume_drop', id);
      return p.enabled && avg >= p.minDailyAmount;
    }, { weeks: rules.sameWeekdayWeeks, minSameWeekdays: rules.minSameWeekdays, holidays: new Set(rules.holidays), alsoProfile,
      categories: this.#categories, cohort: { minApprovals: rules.cancel_rate_spike.minBaselineApprovals, minMerchants: rules.cancel_rate_spike.minCohortMerchants } });
    this.#o.log.info({ day: iso(today), merchants: b.totals.size, volumeEligible: b.eligible.size, ms: Math.round(performance.now() - t0) }, 'baselines loaded');
    return b;
  }

  /**
  /**
   * Reads the hour profiles `decideMinute` needs for volume_spike (decide.ts `spikeCandidates`) that the day's
   * baselines lack: once per merchant and day (a merchant crosses the window guard, its history is read once).
   */
  async profileSpikeCandidates(base: DayBaselines, ids: string[]): Promise<void> {
    const missing = ids.filter((id) => !base.profiles.has(id));
    if (!missing.length) return;
    if (this.#spikeProfiled?.today !== base.todayStart) this.#spikeProfiled = { today: base.todayStart, ids: new Set() };
    for (const id of missing) this.#spikeProfiled.ids.add(id);
    await readProfiles(this.#reader, base, missing);
  }

  /**
   * Today's approved amounts over [00:00, `hs`) of the volume_drop merchants (eligible, or `firing` now): read again
   * for a new hour, when a merchant joins the set, and once the last read is `todayRefreshMs` old.
   */
  todayFullHours(base: DayBaselines, today: number, hs: number, firing: string[]): Promise<Map<string, Totals>> {
    const key = `${today}/${hs}`;
    const ids = [...new Set([...base.eligible, ...firing])];
    const now = this.#o.now();
    const had = this.#todayHours;
    if (had?.key === key && now - had.at < (this.#o.todayRefreshMs ?? 50_000) && ids.every((id) => had.ids.has(id))) return had.totals;
    const totals = hs > today && ids.length ? this.#reader.totals(ids, today, hs) : Promise.resolve(new Map<string, Totals>());
    const entry = { key, ids: new Set(ids), at: now, totals };
    this.#todayHours = entry;
    // A failed read is not kept: the next minute reads again.
    totals.catch(() => { if (this.#todayHours === entry) this.#todayHours = null; });
    return totals;
  }

  /**
   * After the last minute of a day or an hour: starts loading what the next minute needs anew (the next day's
   * baselines; the next hour's full hours). Everything these reads cover is closed by then.
   */
  prefetch(M: number, base: DayBaselines, firing: string[]): void {
    const next = M + MINUTE;
    const nextDay = dayStart(next, this.#o.tz);
    if (nextDay === next) {
      if (this.#nextBaselines?.today !== nextDay) {
        const promise = this.#load(nextDay);
        promise.catch(() => {}); // awaited (and reported) by the minute that needs it
        this.#nextBaselines = { today: nextDay, promise };
      }
    } else if (next === hourStart(next)) {
      void this.todayFullHours(base, nextDay, next, firing).catch(() => {});
    }
  }
}

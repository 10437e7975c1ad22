/**
 * The shadow version: one draft decided beside the active version on every live minute, right after the live minute
 * is committed and published (so it adds nothing to the live alert latency), by the same `decideMinute` over the
 * same window sums and the same day-level reads. Its transitions go to `shadow_alerts` — never to `alerts`, the
 * outbox or the alert channel — in one transaction with its progress (`rule_shadows.last_minute`, compare-and-set).
 *
 * It starts from the live alerts firing before its first minute, as an activation at that minute would, which is
 * also where a backtest starting at that minute starts: so the shadow's would-be alerts equal a backtest of its
 * version over the minutes it evaluated. A failure is logged and the shadow skips that minute; the live minute is
 * already committed and never waits for it.
 */
import type pg from 'pg';
import type { BucketReader, Totals } from '../aggregator/store/index.ts';
import { systemClock, type Clock } from '../lib/clock.ts';
import type { Exposure } from '../lib/exposure.ts';
import type { Logger } from '../lib/logger.ts';
import { dayStart, hourStart, MINUTE } from '../lib/time.ts';
import { applyDecision, decideMinute, emptyMemory, firingMerchants, spikeCandidates, type Memory } from './decide.ts';
import type { MerchantDirectory } from './directory.ts';
import { DayInputs } from './inputs.ts';
import { commitShadowMinute, currentShadow, loadShadow, type FiringAlert, type ShadowInfo } from './risk-store/index.ts';
import { WindowSums } from './window.ts';

interface Running { id: string; inputs: DayInputs; memory: Memory; progress: number | null; window: WindowSums | null }

export interface ShadowMinute {
  minute: number;
  ingestLagMs: number;
  /** The live firing alerts before this minute (where a new shadow starts). */
  liveFiringBefore: ReadonlyMap<string, FiringAlert>;
  /** The live window sums of this minute, for a shadow with the same window length. */
  liveWindow: { windowMinutes: number; window: ReadonlyMap<string, Totals>; hour: ReadonlyMap<string, Totals> };
  /** The store's state epoch the live minute was read under (window.ts: a new one drops the shadow's window too). */
  epoch?: string;
  /**
   * The live minute's money at risk (absent: the live evaluator did not judge receivable, nor does the shadow): the
   * merchants that owe, with their exposure at the minute's instant, and a read of other merchants' exposure at it
   * (the shadow's firing receivable alerts whose merchant owes nothing now).
   */
  exposures?: { owing: ReadonlyMap<string, Exposure>; of: (ids: string[]) => Promise<Map<string, Exposure>> };
}

export class ShadowEvaluator {
  #running: Running | null = null;

  constructor(private readonly o: { tz: string; maxIngestLagMs: number }, private readonly d: { reader: BucketReader; db: pg.Pool; log: Logger; now?: Clock; directory?: MerchantDirectory }) {}

  /** Decides minute M for the current shadow, if there is one. Never throws. */
  async minute(m: ShadowMinute): Promise<void> {
    try {
      await this.#minute(m);
    } catch (err) {
      this.#running = null; // reloaded from the store next minute
      this.d.log.warn({ err }, 'shadow version: minute failed; it is skipped');
    }
  }

  async #minute(m: ShadowMinute): Promise<void> {
    const { db } = this.d;
    const s = await currentShadow(db);
    if (!s) { this.#running = null; return; }
    let run = this.#running;
    if (run?.id !== s.id) run = this.#running = await this.#load(s, m.liveFiringBefore);
    const M = m.minute;
    const rules = run.inputs.rules;
    const today = dayStart(M, this.o.tz);
    const end = M + MINUTE;
    const windowFrom = end - rules.windowMinutes * MINUTE;
    const hs = Math.max(hourStart(M), today);
    let win = m.liveWindow;
    if (rules.windowMinutes !== m.liveWindow.windowMinutes) {
      run.window ??= new WindowSums(this.d.reader);
      const w = await run.window.read(windowFrom, hs, end, m.epoch);
      win = { windowMinutes: rules.windowMinutes, window: w.window, hour: w.hour };
    }
    const base = await run.inputs.baselines(today);
    const todayHours = await run.inputs.todayFullHours(base, today, hs, firingMerchants(run.memory.firing, 'volume_drop'));
    await run.inputs.profileSpikeCandidates(base, spikeCandidates(rules, win.window, run.memory.firing, run.memory.tracked.volume_spike));
    // receivable as the live evaluator judges it: the owing merchants, and those of the shadow's own firing alerts
    let exposures: Map<string, Exposure> | undefined;
    if (m.exposures) {
      exposures = new Map(m.exposures.owing);
      const missing = firingMerchants(run.memory.firing, 'receivable').filter((id) => !exposures!.has(id));
      if (missing.length) for (const [id, e] of await m.exposures.of(missing)) exposures.set(id, e);
    }
    const d = decideMinute({
      minute: M, today, windowFrom, ingestLagMs: m.ingestLagMs, replay: true, rules, maxIngestLagMs: this.o.maxIngestLagMs,
      slackEnabled: false, window: win.window, partialHour: win.hour, todayHours, baselines: base, silences: [],
      firing: run.memory.firing, signatures: run.memory.signatures, tracked: run.memory.tracked, exposures,
    });
    const fired = await commitShadowMinute(db, { shadowId: run.id, minute: M, previous: run.progress, transitions: d.transitions, clearCounts: d.clearCounts });
    run.progress = M;
    applyDecision(run.memory, d, (key) => fired.get(key)!);
  }

  /** A shadow seen for the first time: its firing alerts from the store, or (new) the live ones copied in. */
  async #load(s: ShadowInfo, liveFiring: ReadonlyMap<string, FiringAlert>): Promise<Running> {
    const { db } = this.d;
    const { rules, firing } = await loadShadow(db, s, liveFiring);
    this.d.log.info({ version: s.version, firing: firing.length }, 'shadow version loaded');
    return {
      id: s.id, memory: emptyMemory(firing), progress: s.lastMinute?.getTime() ?? null, window: null,
      inputs: new DayInputs(this.d.reader, rules, { tz: this.o.tz, baselineRefreshMs: 900_000, log: this.d.log, now: this.d.now ?? systemClock, directory: this.d.directory }),
    };
  }
}

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
import type { Logger } from '../lib/logger.ts';
import { dayStart, hourStart, MINUTE } from '../lib/time.ts';
import { applyDecision, decideMinute, emptyMemory, firingMerchants, spikeCandidates, type Memory } from './decide.ts';
import type { MerchantDirectory } from './directory.ts';
import { DayInputs } from './inputs.ts';
import { configOf, type Queryable } from './rules/versions.ts';
import { keyOf, type FiringAlert } from './store.ts';
import { WindowSums } from './window.ts';

export interface ShadowInfo { id: string; version: string; startedAt: Date; startedBy: string; firstMinute: Date | null; lastMinute: Date | null }

/** Starts evaluating `version` as the shadow (stopping the previous one); false when the version is unknown. */
export async function startShadow(db: Queryable, version: string, actor: string): Promise<boolean> {
  if (!(await db.query('SELECT 1 FROM rule_versions WHERE version = $1', [version])).rowCount) return false;
  await db.query('UPDATE rule_shadows SET stopped_at = clock_timestamp(), stopped_by = $1 WHERE stopped_at IS NULL', [actor]);
  await db.query('INSERT INTO rule_shadows (version, started_by) VALUES ($1, $2)', [version, actor]);
  return true;
}

export async function stopShadow(db: Queryable, actor: string): Promise<boolean> {
  const r = await db.query('UPDATE rule_shadows SET stopped_at = clock_timestamp(), stopped_by = $1 WHERE stopped_at IS NULL', [actor]);
  return Boolean(r.rowCount);
}

export async function currentShadow(db: pg.Pool): Promise<ShadowInfo | null> {
  const r = await db.query('SELECT id::text, version, started_at, started_by, first_minute, last_minute FROM rule_shadows WHERE stopped_at IS NULL');
  const x = r.rows[0];
  return x ? { id: x.id, version: x.version, startedAt: x.started_at, startedBy: x.started_by, firstMinute: x.first_minute, lastMinute: x.last_minute } : null;
}

export interface ShadowAlert { rule: string; merchantId: string; firedAt: string; resolvedAt: string | null; carried: boolean; evidence: unknown }

export async function shadowAlerts(db: pg.Pool, shadowId: string): Promise<ShadowAlert[]> {
  const r = await db.query('SELECT rule, merchant_id, fired_at, resolved_at, carried, evidence FROM shadow_alerts WHERE shadow_id = $1 ORDER BY fired_at, id', [shadowId]);
  return r.rows.map((x) => ({ rule: x.rule, merchantId: x.merchant_id, firedAt: x.fired_at.toISOString(), resolvedAt: x.resolved_at?.toISOString() ?? null, carried: x.carried, evidence: x.evidence }));
}

interface Running { id: string; inputs: DayInputs; memory: Memory; progress: number | null; window: WindowSums | null }

export interface ShadowMinute {
  minute: number;
  ingestLagMs: number;
  /** The live firing alerts before this minute (where a new shadow starts). */
  liveFiringBefore: ReadonlyMap<string, FiringAlert>;
  /** The live window sums of this minute, for a shadow with the same window length. */
  liveWindow: { windowMinutes: number; window: ReadonlyMap<string, Totals>; hour: ReadonlyMap<string, Totals> };
}

export class ShadowEvaluator {
  #running: Running | null = null;

  constructor(private readonly o: { tz: string; maxIngestLagMs: number }, private readonly d: { reader: BucketReader; db: pg.Pool; log: Logger; directory?: MerchantDirectory }) {}

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
      const w = await run.window.read(windowFrom, hs, end);
      win = { windowMinutes: rules.windowMinutes, window: w.window, hour: w.hour };
    }
    const base = await run.inputs.baselines(today);
    const todayHours = await run.inputs.todayFullHours(base, today, hs, firingMerchants(run.memory.firing, 'volume_drop'));
    await run.inputs.profileSpikeCandidates(base, spikeCandidates(rules, win.window, run.memory.firing, run.memory.tracked.volume_spike));
    const d = decideMinute({
      minute: M, today, windowFrom, ingestLagMs: m.ingestLagMs, replay: true, rules, maxIngestLagMs: this.o.maxIngestLagMs,
      slackEnabled: false, window: win.window, partialHour: win.hour, todayHours, baselines: base, silences: [],
      firing: run.memory.firing, signatures: run.memory.signatures, tracked: run.memory.tracked,
    });
    const fired = new Map<string, string>();
    const c = await db.connect();
    try {
      await c.query('BEGIN');
      const cas = await c.query(`UPDATE rule_shadows SET last_minute = $2, first_minute = coalesce(first_minute, $2)
        WHERE id = $1 AND stopped_at IS NULL AND last_minute IS NOT DISTINCT FROM $3`, [run.id, new Date(M), run.progress === null ? null : new Date(run.progress)]);
      if (cas.rowCount !== 1) throw new Error('shadow progress moved under us (stopped, or another evaluator runs it)');
      for (const t of d.transitions) {
        if (t.kind === 'fired') {
          const r = await c.query(`INSERT INTO shadow_alerts (shadow_id, rule, merchant_id, fired_at, last_notified_at, clear_minutes, evidence)
            VALUES ($1, $2, $3, $4, $4, 0, $5) RETURNING id::text`, [run.id, t.rule, t.merchantId, new Date(M), t.evidence]);
          fired.set(keyOf(t.rule, t.merchantId), r.rows[0].id);
        } else {
          await c.query('UPDATE shadow_alerts SET resolved_at = $2, last_notified_at = $3, clear_minutes = $4 WHERE id = $1',
            [t.alertId, t.kind === 'resolved' ? new Date(M) : null, new Date(t.life.lastNotifiedAt), t.life.clearMinutes]);
        }
      }
      for (const x of d.clearCounts) await c.query('UPDATE shadow_alerts SET clear_minutes = $2 WHERE id = $1', [x.alertId, x.clearMinutes]);
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      c.release();
    }
    run.progress = M;
    applyDecision(run.memory, d, (key) => fired.get(key)!);
  }

  /** A shadow seen for the first time: its firing alerts from the store, or (new) the live ones copied in. */
  async #load(s: ShadowInfo, liveFiring: ReadonlyMap<string, FiringAlert>): Promise<Running> {
    const { db } = this.d;
    const v = await db.query('SELECT config FROM rule_versions WHERE version = $1', [s.version]);
    const rules = configOf(s.version, v.rows[0].config);
    if (s.lastMinute === null) {
      await db.query('DELETE FROM shadow_alerts WHERE shadow_id = $1', [s.id]);
      for (const a of liveFiring.values()) {
        const ev = await db.query(`SELECT t.evidence FROM alert_transitions t WHERE t.alert_id = $1 AND t.kind = 'fired' ORDER BY t.id LIMIT 1`, [a.id]);
        await db.query(`INSERT INTO shadow_alerts (shadow_id, rule, merchant_id, fired_at, last_notified_at, clear_minutes, carried, evidence)
          VALUES ($1, $2, $3, $4, $5, $6, true, $7)`, [s.id, a.rule, a.merchantId, new Date(a.life.firedAt), new Date(a.life.lastNotifiedAt), a.life.clearMinutes, ev.rows[0]?.evidence ?? {}]);
      }
    }
    const r = await db.query(`SELECT id::text, rule, merchant_id, fired_at, last_notified_at, clear_minutes FROM shadow_alerts
      WHERE shadow_id = $1 AND resolved_at IS NULL`, [s.id]);
    const firing: FiringAlert[] = r.rows.map((x) => ({
      id: x.id, rule: x.rule, merchantId: x.merchant_id,
      life: { firedAt: x.fired_at.getTime(), lastNotifiedAt: x.last_notified_at.getTime(), clearMinutes: x.clear_minutes },
    }));
    this.d.log.info({ version: s.version, firing: firing.length }, 'shadow version loaded');
    return {
      id: s.id, memory: emptyMemory(firing), progress: s.lastMinute?.getTime() ?? null, window: null,
      inputs: new DayInputs(this.d.reader, rules, { tz: this.o.tz, baselineRefreshMs: 900_000, log: this.d.log, now: Date.now, directory: this.d.directory }),
    };
  }
}

/**
 * Pipeline status: how far behind each stage is. Every part is read independently, so one stage being down
 * shows as that stage's error and not as a failed page. Used by GET /api/status and `riskmon status`.
 */
import type { Admin } from 'kafkajs';
import type pg from 'pg';
import { backfillStatus, type BackfillStatus, type BucketReader, type GapRecord } from '../aggregator/store/index.ts';
import { alertCounts, lastEvaluatedMinute, webhookCounts } from '../alerting/risk-store/index.ts';
import { systemClock } from '../lib/clock.ts';
import { withTimeout } from '../lib/timeout.ts';

export interface StatusSources {
  sourcePg: pg.Pool | pg.Client;
  riskPg: pg.Pool | pg.Client;
  reader: BucketReader;
  kafkaAdmin: () => Promise<Admin>;
  slot: string;
  group: string;
  topic: string;
}

export interface PipelineStatus {
  time: string;
  slot: { name: string; lagBytes: number | null; active: boolean | null; error?: string };
  consumer: { group: string; topic: string; lag: number | null; error?: string };
  watermark: { at: string | null; behindMs: number | null; error?: string };
  evaluator: { lastClosedMinute: string | null; behindMs: number | null; error?: string };
  alerts: { firing: number | null; pendingNotifications: number | null };
  /** webhook events (payout actions, alert transitions) not yet delivered, and dead-lettered ones */
  webhooks: { pending: number | null; failed: number | null; oldestPendingAt: string | null; error?: string };
  /** the last history backfill: `running` (no merchant is judged meanwhile) with its progress, `done`, or `none` */
  backfill: BackfillStatus | { state: 'unknown'; error: string };
  /** a known gap in the stream (a lost slot created anew) until a backfill covers it; null when there is none */
  gap: GapRecord | null | { error: string };
}

const msg = (e: unknown) => (e as Error)?.message ?? String(e);
const answerWithin = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  withTimeout(p, ms, () => new Error(`${what} did not answer within ${ms} ms`));

export async function pipelineStatus(s: StatusSources, now = systemClock()): Promise<PipelineStatus> {
  const slot = (async (): Promise<PipelineStatus['slot']> => {
    const { rows } = await s.sourcePg.query(
      `SELECT active, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::float8 AS lag FROM pg_replication_slots WHERE slot_name = $1`, [s.slot]);
    if (!rows.length) return { name: s.slot, lagBytes: null, active: null, error: `slot "${s.slot}" does not exist (has the cdc started?)` };
    return { name: s.slot, lagBytes: rows[0].lag === null ? null : Number(rows[0].lag), active: rows[0].active };
  })().catch((e) => ({ name: s.slot, lagBytes: null, active: null, error: msg(e) }));

  const consumer = (async (): Promise<PipelineStatus['consumer']> => {
    const admin = await answerWithin(s.kafkaAdmin(), 5000, 'Kafka');
    // Asking for offsets of a missing topic makes kafkajs retry in the background: check first.
    if (!(await answerWithin(admin.listTopics(), 5000, 'Kafka')).includes(s.topic)) {
      return { group: s.group, topic: s.topic, lag: null, error: `topic "${s.topic}" does not exist (has the cdc started?)` };
    }
    const [ends, committed] = await answerWithin(Promise.all([
      admin.fetchTopicOffsets(s.topic),
      admin.fetchOffsets({ groupId: s.group, topics: [s.topic] }),
    ]), 5000, 'Kafka');
    const done = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
    let lag = 0;
    for (const p of ends) {
      const c = done.get(p.partition) ?? -1;
      lag += Number(p.high) - (c < 0 ? Number(p.low) : c);
    }
    return { group: s.group, topic: s.topic, lag };
  })().catch((e) => ({ group: s.group, topic: s.topic, lag: null, error: msg(e) }));

  const watermark = s.reader.watermark()
    .then((w) => ({ at: w === null ? null : new Date(w).toISOString(), behindMs: w === null ? null : now - w }))
    .catch((e) => ({ at: null, behindMs: null, error: msg(e) }));

  const evaluator = lastEvaluatedMinute(s.riskPg)
    .then((m) => {
      // A minute is closed at its end, so "behind" counts from the end of the last closed minute.
      return { lastClosedMinute: m ? m.toISOString() : null, behindMs: m ? now - (m.getTime() + 60_000) : null };
    })
    .catch((e) => ({ lastClosedMinute: null, behindMs: null, error: msg(e) }));

  const alerts = alertCounts(s.riskPg)
    .catch(() => ({ firing: null, pendingNotifications: null }));

  const webhooks = webhookCounts(s.riskPg)
    .catch((e) => ({ pending: null, failed: null, oldestPendingAt: null, error: msg(e) }));

  const backfill = (s.reader.backfill ? s.reader.backfill() : Promise.resolve(null))
    .then((r) => backfillStatus(r))
    .catch((e) => ({ state: 'unknown' as const, error: msg(e) }));

  const gap = (s.reader.gap ? s.reader.gap() : Promise.resolve(null)).catch((e) => ({ error: msg(e) }));

  return {
    time: new Date(now).toISOString(),
    slot: await slot, consumer: await consumer, watermark: await watermark, evaluator: await evaluator, alerts: await alerts, webhooks: await webhooks,
    backfill: await backfill,
    gap: await gap,
  };
}

const human = (ms: number | null) => ms === null ? '—' : Math.abs(ms) < 120_000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 60_000).toFixed(1)} min`;
const bytes = (b: number | null) => b === null ? '—' : b < 1024 ? `${b} B` : b < 1 << 20 ? `${(b / 1024).toFixed(1)} KiB` : `${(b / (1 << 20)).toFixed(1)} MiB`;

function backfillLine(b: PipelineStatus['backfill']): string {
  if (b.state === 'none' || b.state === 'unknown') return b.state === 'none' ? 'none' : '—';
  const range = `${b.from} → ${b.to ?? 'now'}`;
  const rate = b.rowsPerSecond ? `, ${b.rowsPerSecond.toLocaleString('en-US')} rows/s` : '';
  if (b.state === 'running') {
    const judging = b.aside && !b.swapping
      ? 'rebuilt aside: the live buckets are applied and judged meanwhile, the range is swapped in at the end'
      : b.swapping ? 'swapping the range in: no merchant is judged until it is done' : 'no merchant is judged until it is done';
    return `running (${b.kind}) ${range}: ${Math.round(b.progress * 100)}% (${b.chunksDone}/${b.chunks} chunks, ${b.rows.toLocaleString('en-US')} rows${rate}); ${judging}`;
  }
  return `done (${b.kind}) ${range}: ${b.rows.toLocaleString('en-US')} rows${rate}, finished ${b.finishedAt}`;
}

function gapLine(g: PipelineStatus['gap']): string {
  if (g === null) return 'none';
  if ('error' in g) return '—';
  return `slot ${g.slot} was lost: changes committed from ${g.from ?? '(unknown)'} to ${g.to} are not in the buckets; fix: ${g.fix}`;
}

/** A readable table for `riskmon status`. */
export function formatStatus(st: PipelineStatus): string {
  const rows: [string, string, string][] = [
    ['cdc slot', `${st.slot.name}: ${bytes(st.slot.lagBytes)} behind${st.slot.active === false ? ' (no reader attached)' : ''}`, st.slot.error ?? ''],
    ['kafka consumer', `${st.consumer.group} on ${st.consumer.topic}: ${st.consumer.lag ?? '—'} messages behind`, st.consumer.error ?? ''],
    ['watermark', `${st.watermark.at ?? '—'} (${human(st.watermark.behindMs)} behind now)`, st.watermark.error ?? ''],
    ['last closed minute', `${st.evaluator.lastClosedMinute ?? '—'} (${human(st.evaluator.behindMs)} behind now)`, st.evaluator.error ?? ''],
    ['alerts', `${st.alerts.firing ?? '—'} firing, ${st.alerts.pendingNotifications ?? '—'} notifications pending`, ''],
    ['webhooks', `${st.webhooks.pending ?? '—'} pending${st.webhooks.oldestPendingAt ? ` (oldest ${st.webhooks.oldestPendingAt})` : ''}, ${st.webhooks.failed ?? '—'} failed${st.webhooks.failed ? ' (GET /api/webhooks?status=failed)' : ''}`, st.webhooks.error ?? ''],
    ['backfill', backfillLine(st.backfill), 'error' in st.backfill ? st.backfill.error : ''],
    ['gap', gapLine(st.gap), st.gap && 'error' in st.gap ? st.gap.error : ''],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  const lines = rows.map(([k, v, e]) => `${k.padEnd(w)}  ${v}${e ? `\n${''.padEnd(w)}  ! ${e}` : ''}`);
  return `riskmon status at ${st.time}\n${lines.join('\n')}\n`;
}

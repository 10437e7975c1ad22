/**
 * The webhook outbox (`webhook_outbox`): payout actions (holds.ts) and alert transitions (minutes.ts) add their rows in
 * the transaction of what caused them and NOTIFY `riskmon_webhooks`; the deliverer (alerting/webhooks/deliverer.ts)
 * claims the due ones and records each outcome in the claiming transaction.
 *
 * Order: a row is claimed only when no earlier row of its (channel, order_key) is pending or failed, so a merchant's
 * release never overtakes its hold, even across deliverers (the earlier row stays pending while another deliverer
 * holds its lock) and across a dead-lettered action (it blocks its key until an operator retries or discards it).
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';

export const WEBHOOKS_CHANNEL = 'riskmon_webhooks';
export type WebhookChannel = 'action' | 'alert';
export type DeliveryStatus = 'pending' | 'delivered' | 'failed' | 'discarded';

type Queryable = Pick<pg.PoolClient, 'query'>;

export interface NewWebhookRow {
  channel: WebhookChannel;
  type: string;
  orderKey: string;
  merchantId: string;
  holdId?: string | null;
  transitionId?: string | null;
  /** the event without its id: the id is made here, and is the body's first field */
  event: Record<string, unknown>;
}

/** Adds outbox rows (call inside the transaction of what caused them); returns their event ids in order. */
export async function enqueueWebhooks(db: Queryable, rows: NewWebhookRow[]): Promise<string[]> {
  if (!rows.length) return [];
  const ids = rows.map(() => randomUUID());
  await db.query(
    `INSERT INTO webhook_outbox (event_id, channel, type, order_key, merchant_id, hold_id, transition_id, body)
     SELECT e, c, t, k, m, h, tr, b
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::text[]) WITH ORDINALITY AS u(e, c, t, k, m, h, tr, b, n)
      ORDER BY n`,
    [ids, rows.map((r) => r.channel), rows.map((r) => r.type), rows.map((r) => r.orderKey), rows.map((r) => r.merchantId),
      rows.map((r) => r.holdId ?? null), rows.map((r) => r.transitionId ?? null), rows.map((r, i) => JSON.stringify({ id: ids[i], ...r.event }))],
  );
  await db.query(`SELECT pg_notify('${WEBHOOKS_CHANNEL}', $1)`, [rows[0].channel]);
  return ids;
}

export interface DueWebhook { rowId: string; eventId: string; type: string; body: string; attempts: number; firstAttemptAt: number | null }

/**
 * Claims up to `limit` due rows of `channel` that head their key's queue, oldest first, FOR UPDATE SKIP LOCKED.
 * Call it inside a transaction (inTransaction) and record every outcome in it.
 */
export async function claimDueWebhooks(client: pg.PoolClient, channel: WebhookChannel, now: number, limit: number): Promise<DueWebhook[]> {
  const { rows } = await client.query<{ id: string; event_id: string; type: string; body: string; attempts: number; first_attempt_at: Date | null }>(
    `SELECT o.id::text, o.event_id, o.type, o.body, o.attempts, o.first_attempt_at
       FROM webhook_outbox o
      WHERE o.channel = $1 AND o.status = 'pending' AND o.next_attempt_at <= $2
        AND NOT EXISTS (SELECT 1 FROM webhook_outbox e
                         WHERE e.channel = o.channel AND e.order_key = o.order_key AND e.id < o.id AND e.status IN ('pending', 'failed'))
      ORDER BY o.id LIMIT $3 FOR UPDATE OF o SKIP LOCKED`,
    [channel, new Date(now), limit],
  );
  return rows.map((r) => ({
    rowId: r.id, eventId: r.event_id, type: r.type, body: r.body, attempts: r.attempts, firstAttemptAt: r.first_attempt_at?.getTime() ?? null,
  }));
}

export interface WebhookOutcome {
  status: 'delivered' | 'failed' | 'pending';
  httpStatus: number | null;
  /** when a row kept pending is tried again (epoch ms) */
  nextAttemptAt: number | null;
  reason: string | null;
}

/** Records one attempt's outcome on its claimed row, in the claiming transaction. */
export async function recordWebhookOutcome(client: pg.PoolClient, rowId: string, at: number, o: WebhookOutcome): Promise<void> {
  await client.query(
    `UPDATE webhook_outbox SET attempts = attempts + 1, first_attempt_at = coalesce(first_attempt_at, $2), last_status = $3, status = $4,
            reason = $5, next_attempt_at = coalesce($6, next_attempt_at), delivered_at = CASE WHEN $4 = 'delivered' THEN $2 ELSE delivered_at END
      WHERE id = $1`,
    [rowId, new Date(at), o.httpStatus, o.status, o.reason, o.nextAttemptAt === null ? null : new Date(o.nextAttemptAt)],
  );
}

/** One outbox row as the API shows it (never its secret-bearing headers: those are made when it is sent). */
export interface WebhookDelivery {
  id: string;
  channel: WebhookChannel;
  type: string;
  merchantId: string;
  holdId: string | null;
  status: DeliveryStatus;
  attempts: number;
  lastStatus: number | null;
  reason: string | null;
  createdAt: string;
  firstAttemptAt: string | null;
  nextAttemptAt: string | null;
  deliveredAt: string | null;
  /** pending behind an earlier row of its key that is pending or failed: that row's event id */
  waitingFor: string | null;
}

export const DELIVERY_COLUMNS = `o.event_id, o.channel, o.type, o.merchant_id, o.hold_id::text, o.status, o.attempts, o.last_status, o.reason,
  o.created_at, o.first_attempt_at, o.next_attempt_at, o.delivered_at,
  (SELECT e.event_id FROM webhook_outbox e WHERE o.status = 'pending' AND e.channel = o.channel AND e.order_key = o.order_key
      AND e.id < o.id AND e.status IN ('pending', 'failed') ORDER BY e.id LIMIT 1) AS waiting_for`;

export interface DeliveryRow {
  event_id: string; channel: WebhookChannel; type: string; merchant_id: string; hold_id: string | null; status: DeliveryStatus; attempts: number;
  last_status: number | null; reason: string | null; created_at: Date; first_attempt_at: Date | null; next_attempt_at: Date | string; delivered_at: Date | null;
  waiting_for: string | null;
}

/** '-infinity' (due at once) comes back from the driver as a string: no time to show. */
const iso = (d: Date | string | null) => (d instanceof Date && Number.isFinite(d.getTime()) ? d.toISOString() : null);

export function deliveryJson(r: DeliveryRow): WebhookDelivery {
  return {
    id: r.event_id, channel: r.channel, type: r.type, merchantId: r.merchant_id, holdId: r.hold_id, status: r.status, attempts: r.attempts,
    lastStatus: r.last_status, reason: r.reason, createdAt: r.created_at.toISOString(), firstAttemptAt: iso(r.first_attempt_at),
    nextAttemptAt: r.status === 'pending' ? iso(r.next_attempt_at) ?? r.created_at.toISOString() : null, deliveredAt: iso(r.delivered_at),
    waitingFor: r.waiting_for,
  };
}

export interface DeliveryFilter { channel?: WebhookChannel; status?: DeliveryStatus; merchantId?: string; before?: string; limit: number }

/** Newest first, keyset-paginated: `before` is the cursor of the previous page (a row id). */
export async function listWebhookDeliveries(db: Queryable, f: DeliveryFilter): Promise<{ items: WebhookDelivery[]; nextCursor: string | null }> {
  const where: string[] = [];
  const args: unknown[] = [];
  const add = (sql: string, v: unknown) => { args.push(v); where.push(sql.replace('?', `$${args.length}`)); };
  if (f.channel) add('o.channel = ?', f.channel);
  if (f.status) add('o.status = ?', f.status);
  if (f.merchantId) add('o.merchant_id = ?', f.merchantId);
  if (f.before) add('o.id < ?::bigint', f.before);
  args.push(f.limit + 1);
  const { rows } = await db.query<DeliveryRow & { id: string }>(
    `SELECT o.id::text, ${DELIVERY_COLUMNS} FROM webhook_outbox o ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY o.id DESC LIMIT $${args.length}`, args);
  const page = rows.slice(0, f.limit);
  return { items: page.map(deliveryJson), nextCursor: rows.length > f.limit ? page[page.length - 1].id : null };
}

/** Counts by channel and status (pending and failed only: delivered rows are history), for the status page. */
export async function webhookCounts(db: Queryable): Promise<{ pending: number; failed: number; oldestPendingAt: string | null }> {
  const { rows } = await db.query<{ pending: string; failed: string; oldest: Date | null }>(
    `SELECT count(*) FILTER (WHERE status = 'pending') AS pending, count(*) FILTER (WHERE status = 'failed') AS failed,
            min(created_at) FILTER (WHERE status = 'pending') AS oldest
       FROM webhook_outbox WHERE status IN ('pending', 'failed')`);
  return { pending: Number(rows[0].pending), failed: Number(rows[0].failed), oldestPendingAt: rows[0].oldest?.toISOString() ?? null };
}

/**
 * An operator's answer to a failed (dead-lettered) row: `retry` makes it pending again with a fresh schedule (same
 * event id, same body), `discard` gives it up for good so the rows queued behind it go out. Null when there is no such
 * row; throws NotFailed when it is not failed.
 */
export async function resolveFailedWebhook(client: Queryable, eventId: string, how: 'retry' | 'discard'): Promise<WebhookDelivery | null> {
  const cur = await client.query<{ status: DeliveryStatus }>('SELECT status FROM webhook_outbox WHERE event_id = $1 FOR UPDATE', [eventId]);
  if (!cur.rows[0]) return null;
  if (cur.rows[0].status !== 'failed') throw new NotFailed(eventId, cur.rows[0].status);
  await client.query(
    how === 'retry'
      ? `UPDATE webhook_outbox SET status = 'pending', attempts = 0, first_attempt_at = NULL, next_attempt_at = '-infinity', reason = 'retried by an operator after: ' || coalesce(reason, '') WHERE event_id = $1`
      : `UPDATE webhook_outbox SET status = 'discarded', reason = 'discarded by an operator after: ' || coalesce(reason, '') WHERE event_id = $1`,
    [eventId]);
  if (how === 'retry') await client.query(`SELECT pg_notify('${WEBHOOKS_CHANNEL}', 'retry')`);
  const { rows } = await client.query<DeliveryRow>(`SELECT ${DELIVERY_COLUMNS} FROM webhook_outbox o WHERE o.event_id = $1`, [eventId]);
  return deliveryJson(rows[0]);
}

export class NotFailed extends Error {
  constructor(readonly eventId: string, readonly status: DeliveryStatus) {
    super(`webhook event ${eventId} is ${status}, not failed: only a failed event is retried or discarded`);
    this.name = 'NotFailed';
  }
}

/**
 * Payout holds (`holds`): an analyst holds a merchant's payouts, with a reason, and releases them later. Each action
 * writes, in one transaction, the hold row, its webhook outbox row (webhooks.ts: `payout.hold` / `payout.release` to
 * the settlement system) and the caller's audit record — so none exists without the others.
 */
import type pg from 'pg';
import type { ActionEvent, ActionType } from '../../lib/webhook.ts';
import { DELIVERY_COLUMNS, deliveryJson, enqueueWebhooks, type DeliveryRow, type DeliveryStatus, type WebhookDelivery } from './webhooks.ts';

export const HOLD_REASON_MAX = 1000;
export type HoldState = 'active' | 'released';

export interface HoldJson {
  id: string;
  merchantId: string;
  state: HoldState;
  reason: string;
  alertId: string | null;
  createdBy: string;
  createdAt: string;
  releasedBy: string | null;
  releasedAt: string | null;
  releaseReason: string | null;
  /**
   * Where the hold's latest action (the hold, or its release) is on its way to the settlement system: pending
   * delivery, delivered, or failed (dead-lettered: see `actions`).
   */
  delivery: DeliveryStatus;
  /** the webhook events of this hold, oldest first */
  actions: WebhookDelivery[];
}

interface HoldRow {
  id: string; merchant_id: string; state: HoldState; reason: string; alert_id: string | null; created_by: string; created_at: Date;
  released_by: string | null; released_at: Date | null; release_reason: string | null;
}
const HOLD_COLUMNS = `h.id::text, h.merchant_id, h.state, h.reason, h.alert_id::text, h.created_by, h.created_at, h.released_by, h.released_at, h.release_reason`;

type Queryable = Pick<pg.PoolClient, 'query'>;

/** The holds with their webhook events, in the order of `rows`. */
async function withActions(db: Queryable, rows: HoldRow[]): Promise<HoldJson[]> {
  if (!rows.length) return [];
  const { rows: acts } = await db.query<DeliveryRow>(
    `SELECT ${DELIVERY_COLUMNS} FROM webhook_outbox o WHERE o.hold_id = ANY($1::bigint[]) ORDER BY o.id`, [rows.map((r) => r.id)]);
  const byHold = new Map<string, WebhookDelivery[]>();
  for (const a of acts) {
    const list = byHold.get(a.hold_id!) ?? [];
    list.push(deliveryJson(a));
    byHold.set(a.hold_id!, list);
  }
  return rows.map((r) => {
    const actions = byHold.get(r.id) ?? [];
    return {
      id: r.id, merchantId: r.merchant_id, state: r.state, reason: r.reason, alertId: r.alert_id, createdBy: r.created_by,
      createdAt: r.created_at.toISOString(), releasedBy: r.released_by, releasedAt: r.released_at?.toISOString() ?? null,
      releaseReason: r.release_reason, delivery: actions.length ? actions[actions.length - 1].status : 'pending', actions,
    };
  });
}

/** The merchant already has an active hold. */
export class HoldConflict extends Error {
  constructor(readonly hold: HoldJson) {
    super(`merchant ${hold.merchantId} is already held: hold ${hold.id}, by ${hold.createdBy} since ${hold.createdAt} ("${hold.reason}"); release it first`);
    this.name = 'HoldConflict';
  }
}

/** The hold was released already. */
export class HoldReleased extends Error {
  constructor(readonly hold: HoldJson) {
    super(`hold ${hold.id} was already released by ${hold.releasedBy} at ${hold.releasedAt}`);
    this.name = 'HoldReleased';
  }
}

/** The alert named by a new hold is not one of its merchant. */
export class HoldAlertMismatch extends Error {
  constructor(readonly alertId: string, readonly merchantId: string, found: boolean) {
    super(found ? `alert ${alertId} is not an alert of merchant ${merchantId}` : `alert ${alertId} does not exist`);
    this.name = 'HoldAlertMismatch';
  }
}

export interface NewHold {
  merchantId: string;
  reason: string;
  alertId: string | null;
  actor: string;
  /** the action's time (the caller's clock) */
  at: number;
  /** the merchant's exposure now, carried in the webhook event (null when unknown) */
  exposure: Record<string, unknown> | null;
}

const actionEvent = (type: ActionType, holdId: string, merchantId: string, reason: string, actor: string, at: number, exposure: Record<string, unknown> | null): Omit<ActionEvent, 'id'> =>
  ({ type, holdId, merchantId, reason, actor, at: new Date(at).toISOString(), exposure });

/**
 * Creates an active hold and its `payout.hold` outbox row, in `client`'s transaction (the caller adds its audit
 * record there). Throws HoldConflict naming the active hold when the merchant has one (the partial unique index
 * `holds_one_active` decides between two concurrent requests), HoldAlertMismatch for a wrong alertId.
 */
export async function createHold(client: pg.PoolClient, h: NewHold): Promise<HoldJson> {
  if (h.alertId !== null) {
    const a = await client.query<{ merchant_id: string }>('SELECT merchant_id FROM alerts WHERE id = $1', [h.alertId]);
    if (a.rows[0]?.merchant_id !== h.merchantId) throw new HoldAlertMismatch(h.alertId, h.merchantId, Boolean(a.rows[0]));
  }
  const ins = await client.query<HoldRow>(
    `INSERT INTO holds AS h (merchant_id, reason, alert_id, created_by, created_at) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (merchant_id) WHERE state = 'active' DO NOTHING RETURNING ${HOLD_COLUMNS}`,
    [h.merchantId, h.reason, h.alertId, h.actor, new Date(h.at)]);
  if (!ins.rows[0]) {
    const active = await client.query<HoldRow>(`SELECT ${HOLD_COLUMNS} FROM holds h WHERE h.merchant_id = $1 AND h.state = 'active'`, [h.merchantId]);
    // The conflicting hold was released between the INSERT and this read: the caller may simply try again.
    if (!active.rows[0]) throw new Error(`merchant ${h.merchantId}: the active hold changed during the request; retry`);
    throw new HoldConflict((await withActions(client, active.rows))[0]);
  }
  const row = ins.rows[0];
  await enqueueWebhooks(client, [{
    channel: 'action', type: 'payout.hold', orderKey: `merchant:${h.merchantId}`, merchantId: h.merchantId, holdId: row.id,
    event: actionEvent('payout.hold', row.id, h.merchantId, h.reason, h.actor, h.at, h.exposure),
  }]);
  return (await withActions(client, [row]))[0];
}

/**
 * Releases an active hold and adds its `payout.release` outbox row (queued behind the hold's own event), in
 * `client`'s transaction. Null when there is no such hold; HoldReleased when it was released already.
 */
export async function releaseHold(client: pg.PoolClient, id: string, r: { reason: string; actor: string; at: number; exposure: Record<string, unknown> | null }): Promise<HoldJson | null> {
  const cur = await client.query<HoldRow>(`SELECT ${HOLD_COLUMNS} FROM holds h WHERE h.id = $1 FOR UPDATE`, [id]);
  if (!cur.rows[0]) return null;
  if (cur.rows[0].state === 'released') throw new HoldReleased((await withActions(client, cur.rows))[0]);
  const upd = await client.query<HoldRow>(
    `UPDATE holds h SET state = 'released', released_by = $2, released_at = $3, release_reason = $4 WHERE h.id = $1 RETURNING ${HOLD_COLUMNS}`,
    [id, r.actor, new Date(r.at), r.reason]);
  const row = upd.rows[0];
  await enqueueWebhooks(client, [{
    channel: 'action', type: 'payout.release', orderKey: `merchant:${row.merchant_id}`, merchantId: row.merchant_id, holdId: row.id,
    event: actionEvent('payout.release', row.id, row.merchant_id, r.reason, r.actor, r.at, r.exposure),
  }]);
  return (await withActions(client, [row]))[0];
}

export async function getHold(db: Queryable, id: string): Promise<HoldJson | null> {
  const { rows } = await db.query<HoldRow>(`SELECT ${HOLD_COLUMNS} FROM holds h WHERE h.id = $1`, [id]);
  return (await withActions(db, rows))[0] ?? null;
}

export interface HoldFilter { merchantId?: string; state?: HoldState; before?: string; limit: number }

/** Newest first, keyset-paginated: `before` is the id of the last hold of the previous page. */
export async function listHolds(db: Queryable, f: HoldFilter): Promise<{ items: HoldJson[]; nextCursor: string | null }> {
  const where: string[] = [];
  const args: unknown[] = [];
  const add = (sql: string, v: unknown) => { args.push(v); where.push(sql.replace('?', `$${args.length}`)); };
  if (f.merchantId) add('h.merchant_id = ?', f.merchantId);
  if (f.state) add('h.state = ?', f.state);
  if (f.before) add('h.id < ?::bigint', f.before);
  args.push(f.limit + 1);
  const { rows } = await db.query<HoldRow>(
    `SELECT ${HOLD_COLUMNS} FROM holds h ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY h.id DESC LIMIT $${args.length}`, args);
  const page = rows.slice(0, f.limit);
  return { items: await withActions(db, page), nextCursor: rows.length > f.limit ? page[page.length - 1].id : null };
}

/**
 * A merchant's holds for its exposure (`holds: […]` of GET /api/merchants/:id/exposure): the active one, if any,
 * then the latest released ones, newest first, at most `limit`.
 */
export async function holdsOf(db: Queryable, merchantId: string, limit = 10): Promise<HoldJson[]> {
  const { rows } = await db.query<HoldRow>(
    `SELECT ${HOLD_COLUMNS} FROM holds h WHERE h.merchant_id = $1 ORDER BY (h.state = 'active') DESC, h.id DESC LIMIT $2`, [merchantId, limit]);
  return withActions(db, rows);
}

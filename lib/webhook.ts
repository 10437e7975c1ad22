/**
 * riskmon's outgoing webhooks: the events (payout actions, alert transitions) and their signature.
 *
 * Every request carries `riskmon-signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>` — one
 * `v1=` per configured secret, the current one first, so a receiver keeps verifying while the secret is rotated — and
 * `idempotency-key: <event id>`, the same on every try. A receiver verifies with `verifySignature` (or the recipe in
 * docs/contracts.md), rejects a `t` too far from its clock (replays), and dedupes by the idempotency key.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'riskmon-signature';
export const IDEMPOTENCY_HEADER = 'idempotency-key';

export type ActionType = 'payout.hold' | 'payout.release';
/** A payout action as the settlement system receives it (RISKMON_ACTION_WEBHOOK_URL). */
export interface ActionEvent {
  id: string;
  type: ActionType;
  holdId: string;
  merchantId: string;
  reason: string;
  actor: string;
  at: string;
  /** the merchant's exposure when the action was taken (GET /api/merchants/:id/exposure), null when unknown */
  exposure: Record<string, unknown> | null;
}

export type AlertEventType = 'alert.fired' | 'alert.renotified' | 'alert.resolved';
/** An alert transition (RISKMON_ALERT_WEBHOOK_URL): `alert` is the alert JSON of the REST API with the transition's evidence. */
export interface AlertEvent {
  id: string;
  type: AlertEventType;
  alertId: string;
  merchantId: string;
  /** the closed minute that caused the transition */
  at: string;
  alert: Record<string, unknown>;
}

/** The hex HMAC-SHA256 of `<t>.<body>` under `secret`. */
export function sign(secret: string, t: number, body: string): string {
  return createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
}

/** The signature header for `body` at unix second `t`: one v1 per secret, in the order given. */
export function signatureHeader(secrets: readonly string[], t: number, body: string): string {
  return [`t=${t}`, ...secrets.filter(Boolean).map((s) => `v1=${sign(s, t, body)}`)].join(',');
}

export type Verification = { ok: true; t: number } | { ok: false; reason: string };

/**
 * The receiving side: whether `header` signs `body` under one of `secrets`, at a `t` within `toleranceS` of `nowS`.
 * Compares in constant time. `body` must be the raw bytes received, before any JSON parsing.
 */
export function verifySignature(header: string | undefined, body: string, secrets: readonly string[], nowS: number, toleranceS = 300): Verification {
  if (!header) return { ok: false, reason: `no ${SIGNATURE_HEADER} header` };
  let t: number | null = null;
  const sigs: string[] = [];
  for (const part of header.split(',')) {
    const [k, v] = part.trim().split('=', 2);
    if (k === 't' && /^\d{1,12}$/.test(v ?? '')) t = Number(v);
    else if (k === 'v1' && /^[0-9a-f]{64}$/.test(v ?? '')) sigs.push(v);
  }
  if (t === null) return { ok: false, reason: 'no t= in the signature header' };
  if (Math.abs(nowS - t) > toleranceS) return { ok: false, reason: `t=${t} is more than ${toleranceS} s from now (${nowS})` };
  for (const secret of secrets.filter(Boolean)) {
    const want = Buffer.from(sign(secret, t, body), 'hex');
    if (sigs.some((s) => timingSafeEqual(Buffer.from(s, 'hex'), want))) return { ok: true, t };
  }
  return { ok: false, reason: sigs.length ? 'no v1 signature matches a known secret' : 'no v1= in the signature header' };
}

/**
 * The alert as JSON, declared once: the REST API's alert (its TypeBox schema, which Fastify validates and serializes
 * with and /docs/json publishes), the alert inside the pub/sub and WebSocket messages, the dashboard's type (web/
 * imports these types) and what the Slack messages render. The risk store makes it from the alert row
 * (alerting/risk-store/alerts.ts, `alertJson`).
 *
 * The messages: one alert transition as the alerting publishes it on Redis pub/sub (`<prefix>:alerts`) and as the
 * API relays it to WebSocket clients (live, and replayed from alert_transitions after a reconnect);
 * `decodeAlertMessage` is what a reader uses on text from the channel. Triage changes (ack, assign, note,
 * disposition; written by the API) travel on the same channel as `{"type":"alert_update","alert":…}` with the
 * alert's current triage state; `decodeChannelMessage` reads either kind.
 */
import { Type, type Static } from '@sinclair/typebox';

export const ALERT_RULES = ['cancel_rate_spike', 'volume_drop', 'volume_spike', 'receivable'] as const;
export type AlertRule = (typeof ALERT_RULES)[number] | `composed:${string}`;
export type AlertTransition = 'fired' | 'renotified' | 'resolved';

export const DISPOSITIONS = ['confirmed', 'false_positive', 'benign'] as const;
export type Disposition = (typeof DISPOSITIONS)[number];

const Nullable = <T extends ReturnType<typeof Type.Object>>(t: T) => Type.Union([t, Type.Null()]);
const Evidence = Type.Unsafe<Record<string, any>>({ description: 'the numbers that decided it (lib/evidence.ts)' });
export const AckSchema = Nullable(Type.Object({ by: Type.String(), at: Type.String() }));
export const DispositionSchema = Nullable(Type.Object({ value: Type.String(), by: Type.String(), at: Type.String(), note: Type.String() }));

/** A merchant's money at risk (lib/exposure.ts; GET /api/merchants/:id/exposure): amounts as decimal strings. */
export const ExposureSchema = Type.Object({
  merchantId: Type.String(),
  settledThrough: Type.Union([Type.String(), Type.Null()]),
  approvedSinceSettled: Type.String(),
  canceledSinceSettled: Type.String(),
  netSinceSettled: Type.String(),
  receivable: Type.String(),
  projectedReceivable: Type.String(),
  nextPayoutAt: Type.Union([Type.String(), Type.Null()]),
  holds: Type.Array(Type.Object({ id: Type.String(), state: Type.String(), reason: Type.String(), createdBy: Type.String(), createdAt: Type.String() }, { additionalProperties: true })),
});

/** The alert: its row in the risk store with its triage state. */
export const AlertSchema = Type.Object({
  id: Type.String(),
  rule: Type.String(),
  merchantId: Type.String(),
  state: Type.String(),
  firedAt: Type.String(),
  resolvedAt: Type.Union([Type.String(), Type.Null()]),
  evidence: Evidence,
  ruleVersion: Type.String(),
  ack: AckSchema,
  assignee: Type.Union([Type.String(), Type.Null()]),
  disposition: DispositionSchema,
  exposureAtFiring: Type.Union([ExposureSchema, Type.Null()], { description: "the merchant's exposure when the alert fired" }),
  receivableNow: Type.String({ description: "the merchant's receivable now (KRW; '0' when it owes nothing)" }),
});
export type Alert = Static<typeof AlertSchema>;

/** An alert's triage state as the API shows it and alert_update carries it. */
export interface Triage {
  ack: { by: string; at: string } | null;
  assignee: string | null;
  disposition: { value: Disposition; by: string; at: string; note: string } | null;
}

/** One alert with its transitions, notes and triage history (GET /api/alerts/:id and every triage write). */
export const AlertDetailSchema = Type.Composite([AlertSchema, Type.Object({
  transitions: Type.Array(Type.Object({ id: Type.String(), kind: Type.String(), minute: Type.String(), at: Type.String(), ruleVersion: Type.String(), evidence: Evidence })),
  notes: Type.Array(Type.Object({ id: Type.String(), by: Type.String(), at: Type.String(), text: Type.String() })),
  history: Type.Array(Type.Object({
    id: Type.String(), action: Type.String(), by: Type.String(), at: Type.String(),
    value: Type.Union([Type.String(), Type.Null()]), note: Type.Union([Type.String(), Type.Null()]),
  }), { description: 'every triage action, oldest first (acks, assignments, notes, dispositions and their changes)' }),
})]);
export type AlertDetail = Static<typeof AlertDetailSchema>;

export interface AlertMessage {
  type: 'alert';
  /** alert_transitions.id: a WebSocket client that reconnects with lastEventId=N gets the transitions after N. */
  eventId: number;
  transition: AlertTransition;
  alert: Alert;
}

/** The Redis pub/sub channel of alert transitions. */
export function alertsChannel(prefix: string): string {
  return `${prefix}:alerts`;
}

export function encodeAlertMessage(m: AlertMessage): string {
  return JSON.stringify(m);
}

/** Parses a message from the channel; throws when it is not an alert message (the caller logs and skips it). */
export function decodeAlertMessage(text: string): AlertMessage {
  const msg = JSON.parse(text) as AlertMessage;
  if (msg?.type !== 'alert' || !Number.isFinite(Number(msg.eventId))) throw new Error('not an alert message');
  msg.eventId = Number(msg.eventId);
  return msg;
}

/** A triage change: no eventId (not replayed; a client that reconnects reloads what it shows). */
export interface AlertUpdateMessage {
  type: 'alert_update';
  alert: Alert & { notes: number };
}

export function encodeAlertUpdate(m: AlertUpdateMessage): string {
  return JSON.stringify(m);
}

/** Parses either kind of message from the channel; throws when it is neither. */
export function decodeChannelMessage(text: string): AlertMessage | AlertUpdateMessage {
  const msg = JSON.parse(text) as AlertMessage | AlertUpdateMessage;
  if (msg?.type === 'alert_update') {
    if (typeof msg.alert?.id !== 'string') throw new Error('alert_update without an alert id');
    return msg;
  }
  return decodeAlertMessage(text);
}

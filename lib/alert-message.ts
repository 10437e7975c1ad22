/**
 * The alert message: one alert transition as the alerting publishes it on Redis pub/sub (`<prefix>:alerts`) and
 * as the API relays it to WebSocket clients (live, and replayed from alert_transitions after a reconnect). One
 * declaration for both sides; `decodeAlertMessage` is what a reader uses on text from the channel.
 *
 * Triage changes (ack, assign, note, disposition; written by the API) travel on the same channel as
 * `{"type":"alert_update","alert":…}` with the alert's current triage state; `decodeChannelMessage` reads either kind.
 */

export const ALERT_RULES = ['cancel_rate_spike', 'volume_drop', 'volume_spike'] as const;
export type AlertRule = (typeof ALERT_RULES)[number] | `composed:${string}`;
export type AlertTransition = 'fired' | 'renotified' | 'resolved';

export interface AlertBody {
  id: string;
  rule: AlertRule;
  merchantId: string;
  state: 'firing' | 'resolved';
  firedAt: string;
  resolvedAt: string | null;
  evidence: unknown;
}

export const DISPOSITIONS = ['confirmed', 'false_positive', 'benign'] as const;
export type Disposition = (typeof DISPOSITIONS)[number];

/** An alert's triage state as the API shows it and alert_update carries it. */
export interface Triage {
  ack: { by: string; at: string } | null;
  assignee: string | null;
  disposition: { value: Disposition; by: string; at: string; note: string } | null;
}

export interface AlertMessage {
  type: 'alert';
  /** alert_transitions.id: a WebSocket client that reconnects with lastEventId=N gets the transitions after N. */
  eventId: number;
  transition: AlertTransition;
  alert: AlertBody;
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
  alert: AlertBody & Triage & { notes: number };
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

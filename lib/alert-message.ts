/**
 * The alert message: one alert transition as the alerting publishes it on Redis pub/sub (`<prefix>:alerts`) and
 * as the API relays it to WebSocket clients (live, and replayed from alert_transitions after a reconnect). One
 * declaration for both sides; `decodeAlertMessage` is what a reader uses on text from the channel.
 */

export const ALERT_RULES = ['cancel_rate_spike', 'volume_drop'] as const;
export type AlertRule = (typeof ALERT_RULES)[number];
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

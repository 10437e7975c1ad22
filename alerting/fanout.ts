/**
 * Fan-out of alert transitions to every API instance: Redis pub/sub channel `<prefix>:alerts`, one JSON message
 * per transition, published after the PostgreSQL commit. Pub/sub is at-most-once; a client that missed messages
 * reads alert_transitions with id > its lastEventId (eventId is that id).
 *
 * Triage changes (ack, assign, note, disposition; written by the API) go over the same channel as
 * `{"type":"alert_update","alert":…}` with the alert's current triage state. They carry no eventId and are not
 * replayed: a client that reconnects reloads what it shows.
 */
import type { Redis } from 'ioredis';
import type { TransitionKind } from './lifecycle.ts';
import type { RuleName } from './rules/config.ts';
import type { Triage } from './triage.ts';

export interface AlertMessage {
  type: 'alert';
  /** alert_transitions.id */
  eventId: number;
  transition: TransitionKind;
  alert: {
    id: string;
    rule: RuleName;
    merchantId: string;
    state: 'firing' | 'resolved';
    firedAt: string;
    resolvedAt: string | null;
    evidence: Record<string, unknown>;
  };
}

export interface AlertUpdateMessage {
  type: 'alert_update';
  alert: Omit<AlertMessage['alert'], 'rule' | 'state'> & { rule: string; state: string } & Triage & { notes: number };
}

export function alertsChannel(prefix: string): string {
  return `${prefix}:alerts`;
}

export async function publishAlerts(redis: Redis, prefix: string, messages: AlertMessage[]): Promise<void> {
  if (!messages.length) return;
  const p = redis.pipeline();
  for (const m of messages) p.publish(alertsChannel(prefix), JSON.stringify(m));
  await p.exec();
}

export async function publishAlertUpdate(redis: Redis, prefix: string, m: AlertUpdateMessage): Promise<void> {
  await redis.publish(alertsChannel(prefix), JSON.stringify(m));
}

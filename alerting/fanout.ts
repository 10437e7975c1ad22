/**
 * Fan-out of alert transitions to every API instance: RedisClient pub/sub channel `<prefix>:alerts`, one JSON message
 * per transition, published after the PostgreSQL commit. Pub/sub is at-most-once; a client that missed messages
 * reads alert_transitions with id > its lastEventId (eventId is that id).
 */
import type { RedisClient } from '../lib/redis.ts';
import type { TransitionKind } from './lifecycle.ts';
import type { RuleName } from './rules/config.ts';

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

export function alertsChannel(prefix: string): string {
  return `${prefix}:alerts`;
}

export async function publishAlerts(redis: RedisClient, prefix: string, messages: AlertMessage[]): Promise<void> {
  if (!messages.length) return;
  const p = redis.pipeline();
  for (const m of messages) p.publish(alertsChannel(prefix), JSON.stringify(m));
  await p.exec();
}

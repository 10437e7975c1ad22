/**
 * Fan-out of alert transitions to every API instance: Redis pub/sub channel `<prefix>:alerts`, one message
 * (lib/alert-message.ts) per transition, published after the PostgreSQL commit. Pub/sub is at-most-once; a client that missed messages
 * reads alert_transitions with id > its lastEventId (eventId is that id).
 */
import type { Redis } from 'ioredis';
import { alertsChannel, encodeAlertMessage, type AlertMessage } from '../lib/alert-message.ts';

export async function publishAlerts(redis: Redis, prefix: string, messages: AlertMessage[]): Promise<void> {
  if (!messages.length) return;
  const p = redis.pipeline();
  for (const m of messages) p.publish(alertsChannel(prefix), encodeAlertMessage(m));
  await p.exec();
}

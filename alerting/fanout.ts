/**
 * Fan-out of alert transitions to every API instance: RedisClient pub/sub channel `<prefix>:alerts`, one message
 * (lib/alert-message.ts) per transition, published after the PostgreSQL commit. Pub/sub is at-most-once; a client that missed messages
 * reads alert_transitions with id > its lastEventId (eventId is that id).
 *
 * Triage changes (ack, assign, note, disposition; written by the API) go over the same channel as
 * `{"type":"alert_update","alert":…}` with the alert's current triage state. They carry no eventId and are not
 * replayed: a client that reconnects reloads what it shows.
 */
import { type RedisClient } from '../lib/redis.ts';
import { alertsChannel, encodeAlertMessage, encodeAlertUpdate, type AlertMessage, type AlertUpdateMessage } from '../lib/alert-message.ts';

export async function publishAlerts(redis: RedisClient, prefix: string, messages: AlertMessage[]): Promise<void> {
  if (!messages.length) return;
  const p = redis.pipeline();
  for (const m of messages) p.publish(alertsChannel(prefix), encodeAlertMessage(m));
  await p.exec();
}

export async function publishAlertUpdate(redis: RedisClient, prefix: string, m: AlertUpdateMessage): Promise<void> {
  await redis.publish(alertsChannel(prefix), encodeAlertUpdate(m));
}

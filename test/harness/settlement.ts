/**
 * A settlement system for tests: a signed-webhook receiver (webhook-receiver.ts) that checks the payout actions'
 * signature, and the alerting's outbox deliverer for the `action` channel posting to it from the risk store, fast
 * retries (200–500 ms) and a short poll so a test sees a delivery within a second. `down: true` starts the receiver
 * down (the settlement system away when the analyst acts). `stop()` stops both.
 */
import type pg from 'pg';
import { WebhookDeliverer } from '../../alerting/index.ts';
import { logger } from '../../lib/logger.ts';
import { WebhookReceiver } from './webhook-receiver.ts';

export const SETTLEMENT_SECRET = 'settlement-secret-0123456789';

export interface Settlement {
  receiver: WebhookReceiver;
  deliverer: WebhookDeliverer;
  stop(): Promise<void>;
}

export async function startSettlement(db: pg.Pool, riskPgUrl: string, o: { down?: boolean } = {}): Promise<Settlement> {
  const receiver = await new WebhookReceiver({ secrets: [SETTLEMENT_SECRET] }).start();
  if (o.down) await receiver.down();
  const deliverer = new WebhookDeliverer(
    { channel: 'action', url: receiver.url, secrets: [SETTLEMENT_SECRET], timeoutMs: 2000, schedule: { baseMs: 200, maxMs: 500, retryForMs: 600_000 }, batch: 4, pollMs: 200 },
    { db, riskPgUrl, log: logger.child({ component: 'webhooks-test' }, { level: 'error' }) },
  );
  const running = deliverer.run();
  return {
    receiver, deliverer,
    async stop() {
      await deliverer.stop();
      await running;
      await receiver.stop();
    },
  };
}

/**
 * A change topic deleted and created again under the same name (its offsets start over, behind what Redis says was
 * applied): the aggregator stops with TopicRecreatedError, naming partition, offsets and fix, instead of skipping
 * the new topic's events as duplicates; Redis keeps what it held.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { keys } from './store/index.ts';
import { harness, type Harness } from './harness.int.ts';
import { createTopic, testKafka } from './testing.ts';
import { services } from '../test/harness/services.ts';
import { waitFor } from '../test/harness/index.ts';

let h: Harness | null = null;
afterEach(async () => { await h?.close(); h = null; });

describe('aggregator on a recreated change topic', () => {
  it('stops with a clear error instead of skipping the new events as duplicates', async () => {
    h = await harness({ partitions: 2, hotShards: 1 });
    const at = new Date(Date.now() - 10 * 60_000);
    for (let i = 1; i <= 20; i++) await h.cdc.insertPayment(h.db, { id: i, merchant: 1 + (i % 5), amount: 1000 + i, at });
    await h.publish();
    const first = h.startInProcess();
    await h.caughtUp();
    await first.service.stop();
    await first.done;
    const stored = await Promise.all([0, 1].map((p) => h!.redis.get(keys.offset(h!.prefix, p))));
    expect(stored.every((s) => Number(s) > 2)).toBe(true);

    const admin = testKafka(services().KAFKA_BROKERS).admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [h.topic] });
    await waitFor(async () => !(await admin.listTopics()).includes(h!.topic), { timeoutMs: 30_000, message: 'topic deleted' });
    await admin.disconnect();
    await waitFor(async () => { try { await createTopic(testKafka(services().KAFKA_BROKERS), h!.topic, 2); return true; } catch { return false; } },
      { timeoutMs: 30_000, intervalMs: 500, message: 'topic created again' });
    for (let i = 21; i <= 24; i++) await h.cdc.insertPayment(h.db, { id: i, merchant: 1 + (i % 5), amount: 1000 + i, at });
    await h.publish();

    const second = h.startInProcess();
    await expect(second.done).rejects.toThrow(/of topic \S+ ends at offset \d+, but Redis \(prefix \S+\) holds buckets applied up to offset \d+: the topic was recreated or truncated.*Fix: rebuild the buckets/);
    expect(await Promise.all([0, 1].map((p) => h!.redis.get(keys.offset(h!.prefix, p))))).toEqual(stored);
  }, 120_000);
});

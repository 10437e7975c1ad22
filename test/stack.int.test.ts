/**
 * Proves the integration services are real: a logical replication slot on PostgreSQL sees an INSERT,
 * Kafka round-trips a message, Redis stores a key.
 */
import { createKafka, createTopics, kafkaConfigOf } from '../lib/kafka/index.ts';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { dropDatabase, freshDatabase, services, uniqueName } from './harness/services.ts';
import { waitFor } from './harness/index.ts';

describe('test services', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });

  it('PostgreSQL decodes an INSERT from a logical replication slot', async () => {
    const url = await freshDatabase('stack');
    cleanups.push(() => dropDatabase(url));
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    cleanups.push(() => db.end());

    const { rows: [wal] } = await db.query<{ wal_level: string }>('SHOW wal_level');
    expect(wal?.wal_level).toBe('logical');
    await db.query('CREATE TABLE t (id bigint PRIMARY KEY, note text)');
    await db.query('CREATE PUBLICATION p FOR TABLE t');
    const pgoutput = uniqueName('slot_pgoutput');
    const decoding = uniqueName('slot_text');
    await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [pgoutput]);
    await db.query(`SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, [decoding]);

    await db.query(`INSERT INTO t VALUES (42, 'hello')`);

    const text = await db.query<{ data: string }>('SELECT data FROM pg_logical_slot_get_changes($1, NULL, NULL)', [decoding]);
    expect(text.rows.map((r) => r.data)).toContain(`table public.t: INSERT: id[bigint]:42 note[text]:'hello'`);
    const binary = await db.query<{ data: Buffer }>(
      `SELECT data FROM pg_logical_slot_get_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', 'p')`,
      [pgoutput],
    );
    // pgoutput messages: B(egin), R(elation), I(nsert), C(ommit).
    expect(binary.rows.map((r) => String.fromCharCode(r.data[0]!))).toEqual(['B', 'R', 'I', 'C']);
    expect(Buffer.concat(binary.rows.map((r) => r.data)).includes('hello')).toBe(true);
  });

  it('Kafka produces and consumes a message on a fresh topic', async () => {
    const kafka = createKafka(kafkaConfigOf(services().KAFKA_BROKERS), { clientId: uniqueName('stack') });
    const topic = uniqueName('stack_topic');
    const admin = kafka.admin();
    await admin.connect();
    cleanups.push(() => admin.disconnect());
    await createTopics(admin, [{ topic, numPartitions: 3 }], { replication: 0 });

    const producer = kafka.producer({ idempotent: true });
    await producer.connect();
    cleanups.push(() => producer.disconnect());
    await producer.send({ topic, acks: -1, messages: [{ key: 'merchant-42', value: JSON.stringify({ v: 1 }) }] });

    const consumer = kafka.consumer({ groupId: uniqueName('stack_group'), maxWaitTimeInMs: 200 });
    await consumer.connect();
    cleanups.push(() => consumer.disconnect());
    await consumer.subscribe({ topic, fromBeginning: true });
    const seen: string[] = [];
    await consumer.run({ eachMessage: async ({ message }) => void seen.push(`${message.key}=${message.value}`) });

    await waitFor(() => seen.length > 0, { timeoutMs: 60_000, message: 'consume from Kafka' });
    expect(seen).toEqual(['merchant-42={"v":1}']);
  });

  it('Redis stores and returns a key', async () => {
    const redis = new Redis(services().REDIS_URL);
    cleanups.push(async () => redis.disconnect());
    const key = `${uniqueName('stack')}:k`;
    await redis.set(key, 'v', 'EX', 60);
    expect(await redis.get(key)).toBe('v');
    expect(await redis.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
  });
});

/**
 * A stand-in for the cdc in aggregator tests and the benchmark: runs SQL on the reference schema and turns each
 * statement into the change event the cdc would publish (same format, same partitioning), then produces them.
 * Not used in production code.
 */
import { Partitioners, type Kafka, type Producer } from 'kafkajs';
import type pg from 'pg';
import { encodeEvent, heartbeat, type ChangeEvent, type Row, type RowChange } from '../lib/events.ts';
import { formatLsn } from '../lib/lsn.ts';
import { referenceMapping, merchantOf, rowIdOf } from '../lib/mapping.ts';
import { messageKey, partitionOfKey } from '../lib/partition.ts';
import { createKafka, createTopics, kafkaConfigOf } from '../lib/kafka/index.ts';

export function testKafka(brokers: string): Kafka {
  return createKafka(kafkaConfigOf(brokers), { clientId: 'riskmon-agg-test' });
}

export async function createTopic(kafka: Kafka, topic: string, partitions: number): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await createTopics(admin, [{ topic, numPartitions: partitions }], { replication: 0 });
  } finally {
    await admin.disconnect();
  }
}

function toEventRow(r: Record<string, unknown>): Row {
  const out: Row = {};
  for (const [k, v] of Object.entries(r)) {
    out[k] = v instanceof Date ? v.toISOString() : v === null ? null : typeof v === 'number' || typeof v === 'bigint' ? String(v) : (v as string);
  }
  return out;
}

export interface Keyed { key: string; partition: number; value: string }

/** Builds events with increasing LSNs and the cdc's keys; `hot` merchants are keyed merchant#shard. */
export class FakeCdc {
  #lsn = 0x1000000n;
  #seq = 0;
  readonly queue: Keyed[] = [];

  constructor(readonly partitions: number, readonly hotShards: number, readonly hot: Set<string> = new Set()) {}

  nextLsn(): string {
    this.#lsn += 0x100n;
    this.#seq = 0;
    return formatLsn(this.#lsn);
  }

  get lsn(): string { return formatLsn(this.#lsn); }

  change(table: string, op: RowChange['op'], row: Row | null, old: Row | null, commitTs = new Date().toISOString(), newTx = true): RowChange {
    const lsn = newTx ? this.nextLsn() : this.lsn;
    const e: RowChange = { v: 1, lsn, seq: newTx ? 0 : ++this.#seq, commitTs, xid: 1, table, op, row, old };
    this.push(e);
    return e;
  }

  push(e: RowChange): void {
    const m = merchantOf(e, referenceMapping)!;
    const key = messageKey(m, this.hot.has(m), rowIdOf(e, referenceMapping), this.hotShards);
    this.queue.push({ key, partition: partitionOfKey(key, this.partitions), value: encodeEvent(e) });
  }

  /** A heartbeat on every partition (as the cdc sends them) with a fresh LSN. */
  heartbeats(commitTs = new Date().toISOString()): void {
    const lsn = this.nextLsn();
    for (let p = 0; p < this.partitions; p++) {
      const e: ChangeEvent = heartbeat(lsn, commitTs);
      this.queue.push({ key: `hb`, partition: p, value: encodeEvent(e) });
    }
  }

  raw(partition: number, value: string): void {
    this.queue.push({ key: 'raw', partition, value });
  }

  async flush(producer: Producer, topic: string): Promise<Keyed[]> {
    const sent = this.queue.splice(0);
    for (let i = 0; i < sent.length; i += 5000) {
      await producer.send({ topic, acks: -1, messages: sent.slice(i, i + 5000).map((k) => ({ key: k.key, value: k.value, partition: k.partition })) });
    }
    return sent;
  }

  // ---- SQL on the reference schema, each statement one transaction and one event ---------------------------

  async insertPayment(c: pg.Client, p: { id: number | string; merchant: number | string; amount: number | bigint; at: Date | string }, commitTs?: string): Promise<void> {
    const { rows } = await c.query('INSERT INTO payments (payment_id, merchant_id, amount, approved_at) VALUES ($1,$2,$3,$4) RETURNING *',
      [p.id, p.merchant, String(p.amount), p.at]);
    this.change('public.payments', 'insert', toEventRow(rows[0]), null, commitTs);
  }

  async insertCancel(c: pg.Client, x: { id: number | string; payment: number | string; merchant: number | string; amount: number | bigint; at: Date | string }, commitTs?: string): Promise<void> {
    const { rows } = await c.query('INSERT INTO payment_cancels (cancel_id, payment_id, merchant_id, amount, canceled_at) VALUES ($1,$2,$3,$4,$5) RETURNING *',
      [x.id, x.payment, x.merchant, String(x.amount), x.at]);
    this.change('public.payment_cancels', 'insert', toEventRow(rows[0]), null, commitTs);
  }

  /** One INSERT … RETURNING * (e.g. INSERT … SELECT over generate_series) as one transaction of many changes. */
  async bulkInsert(c: pg.Client, table: 'payments' | 'payment_cancels', sql: string, params: unknown[] = [], commitTs?: string): Promise<number> {
    const { rows } = await c.query(sql, params);
    rows.forEach((r, i) => this.change(`public.${table}`, 'insert', toEventRow(r), null, commitTs, i === 0));
    return rows.length;
  }

  async update(c: pg.Client, table: 'payments' | 'payment_cancels', id: number | string, set: Record<string, unknown>, commitTs?: string): Promise<void> {
    const idCol = table === 'payments' ? 'payment_id' : 'cancel_id';
    const old = (await c.query(`SELECT * FROM ${table} WHERE ${idCol} = $1`, [id])).rows[0];
    const cols = Object.keys(set);
    const { rows } = await c.query(`UPDATE ${table} SET ${cols.map((k, i) => `${k} = $${i + 2}`).join(', ')} WHERE ${idCol} = $1 RETURNING *`,
      [id, ...cols.map((k) => set[k])]);
    this.change(`public.${table}`, 'update', toEventRow(rows[0]), toEventRow(old), commitTs);
  }

  async delete(c: pg.Client, table: 'payments' | 'payment_cancels', id: number | string, commitTs?: string): Promise<void> {
    const idCol = table === 'payments' ? 'payment_id' : 'cancel_id';
    const { rows } = await c.query(`DELETE FROM ${table} WHERE ${idCol} = $1 RETURNING *`, [id]);
    this.change(`public.${table}`, 'delete', null, toEventRow(rows[0]), commitTs);
  }
}

export function testProducer(kafka: Kafka): Producer {
  return kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
}

import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { crc32c, decodeFetchV4, decodeProduceV3Response, encodeProduceV3, recordSetOf, recordValue, type ProduceTopic } from './record-batch.ts';

// kafkajs's own decoders (what a consumer runs on these bytes) and its byte-at-a-time CRC-32C.
const require = createRequire(import.meta.url);
const Decoder = require('kafkajs/src/protocol/decoder');
const decodeBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder');
const kafkajsCrc = require('kafkajs/src/protocol/recordBatch/crc32C');

/** Produce v3 body → topics with their decoded batches (and each batch's bytes, for the CRC check). */
async function decodeProduce(buf: Buffer) {
  const d = new Decoder(buf);
  const head = { transactionalId: d.readString(), acks: d.readInt16(), timeout: d.readInt32() };
  const topics: { topic: string; partitions: { partition: number; bytes: Buffer; batch: any }[] }[] = [];
  for (let t = d.readInt32(); t > 0; t--) {
    const topic = d.readString();
    const partitions = [];
    for (let p = d.readInt32(); p > 0; p--) {
      const partition = d.readInt32();
      const bytes: Buffer = d.readBytes();
      partitions.push({ partition, bytes, batch: await decodeBatch(new Decoder(bytes)) });
    }
    topics.push({ topic, partitions });
  }
  expect(d.canReadBytes(1)).toBe(false);
  return { ...head, topics };
}

describe('CRC-32C', () => {
  it('matches the standard check value and kafkajs on every length and offset', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(0))).toBe(0);
    const b = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 131 + 7) & 0xff));
    for (const [from, to] of [[0, 300], [3, 300], [0, 297], [5, 12], [1, 2], [17, 18]]) {
      expect(crc32c(b, from, to), `${from}..${to}`).toBe(kafkajsCrc(b.subarray(from, to)));
    }
  });
});

describe('encodeProduceV3', () => {
  const topics: ProduceTopic[] = [
    { topic: 'riskmon.changes', partitions: [
      { partition: 3, messages: [{ key: '42', value: '{"v":1,"lsn":"0/16B3748"}' }, { key: '42#7', value: 'x'.repeat(300) }, { key: null, value: '{"hb":true}' }] },
      { partition: 11, messages: [{ key: '가맹점', value: '{"name":"한글 상호"}' }] },
    ] },
    { topic: 'riskmon.dlq', partitions: [{ partition: 0, messages: Array.from({ length: 200 }, (_, i) => ({ key: null, value: `{"i":${i}}` })) }] },
  ];

  it('writes what kafkajs decodes back: keys, values, offsets, counts, the request header', async () => {
    const now = Date.parse('2026-11-22T03:00:00.123Z');
    const r = await decodeProduce(encodeProduceV3(-1, 30_000, topics, now));
    expect(r).toMatchObject({ transactionalId: null, acks: -1, timeout: 30_000 });
    expect(r.topics.map((t) => [t.topic, t.partitions.map((p) => p.partition)])).toEqual([['riskmon.changes', [3, 11]], ['riskmon.dlq', [0]]]);
    for (const [ti, t] of topics.entries()) {
      for (const [pi, p] of t.partitions.entries()) {
        const { batch } = r.topics[ti].partitions[pi];
        expect(batch).toMatchObject({ firstOffset: '0', firstTimestamp: String(now), maxTimestamp: String(now), producerId: '-1', inTransaction: false });
        expect(batch.records.map((m: any) => [m.key === null ? null : m.key.toString(), m.value.toString(), m.offset, m.timestamp, m.headers]))
          .toEqual(p.messages.map((m, i) => [m.key, m.value, String(i), String(now), {}]));
      }
    }
  });

  it('carries a CRC-32C over attributes … end of each batch', async () => {
    const r = await decodeProduce(encodeProduceV3(-1, 1000, topics));
    for (const t of r.topics) {
      for (const { bytes } of t.partitions) expect(bytes.readUInt32BE(17)).toBe(crc32c(bytes, 21));
    }
  });

  it('carries an idempotent producer\'s id, epoch and each partition\'s base sequence', async () => {
    const withSeq = topics.map((t) => ({ ...t, partitions: t.partitions.map((p, i) => ({ ...p, baseSequence: 2_147_483_000 + i })) }));
    const r = await decodeProduce(encodeProduceV3(-1, 1000, withSeq, 0, { id: 9_007_199_254_740_993n, epoch: 7 }));
    for (const [ti, t] of r.topics.entries()) {
      for (const [pi, { batch, bytes }] of t.partitions.entries()) {
        expect(batch).toMatchObject({ producerId: '9007199254740993', producerEpoch: 7, firstSequence: 2_147_483_000 + pi, inTransaction: false });
        expect(batch.records).toHaveLength(withSeq[ti].partitions[pi].messages.length);
        expect(bytes.readUInt32BE(17)).toBe(crc32c(bytes, 21));
      }
    }
  });

  it('sizes varints at their edges (offset deltas 63/64, 8191/8192; values of 127/128 bytes)', async () => {
    const messages = Array.from({ length: 8200 }, (_, i) => ({ key: i % 2 ? null : String(i), value: 'v'.repeat(i === 5 ? 127 : i === 6 ? 128 : 1 + (i % 3)) }));
    const r = await decodeProduce(encodeProduceV3(1, 5000, [{ topic: 't', partitions: [{ partition: 0, messages }] }]));
    const got = r.topics[0].partitions[0].batch.records;
    expect(got).toHaveLength(8200);
    for (const i of [0, 5, 6, 63, 64, 8191, 8192, 8199]) {
      expect([got[i].offset, got[i].key?.toString() ?? null, got[i].value.toString()]).toEqual([String(i), messages[i].key, messages[i].value]);
    }
  });
});

describe('decodeProduceV3Response', () => {
  it('reads every partition\'s error code and base offset (errors do not hide the others)', () => {
    const b = Buffer.alloc(4 + 2 + 1 + 4 + 22 * 2 + 2 + 2 + 4 + 22 + 4);
    let at = b.writeInt32BE(2, 0);
    at = b.writeInt16BE(1, at); at += b.write('a', at);
    at = b.writeInt32BE(2, at);
    at = b.writeInt32BE(0, at); at = b.writeInt16BE(0, at); at = b.writeBigInt64BE(41n, at); at = b.writeBigInt64BE(-1n, at);
    at = b.writeInt32BE(5, at); at = b.writeInt16BE(46, at); at = b.writeBigInt64BE(-1n, at); at = b.writeBigInt64BE(-1n, at);
    at = b.writeInt16BE(2, at); at += b.write('bc', at);
    at = b.writeInt32BE(1, at);
    at = b.writeInt32BE(3, at); at = b.writeInt16BE(6, at); at = b.writeBigInt64BE(-1n, at); at = b.writeBigInt64BE(-1n, at);
    b.writeInt32BE(0, at);
    expect(decodeProduceV3Response(b)).toEqual([
      { topic: 'a', partition: 0, errorCode: 0, baseOffset: 41n },
      { topic: 'a', partition: 5, errorCode: 46, baseOffset: -1n },
      { topic: 'bc', partition: 3, errorCode: 6, baseOffset: -1n },
    ]);
  });
});

describe('decodeFetchV4', () => {
  /** A Fetch v4 response for one partition holding these record batches (bytes), and a batch cut at its end. */
  function response(batches: Buffer[], code = 0): Buffer {
    const name = Buffer.from('t');
    const records = Buffer.concat([...batches, batches[0].subarray(0, 30)]);
    const head = Buffer.alloc(4 + 4 + 2 + name.length + 4 + 4 + 2 + 8 + 8 + 4 + 4);
    let at = head.writeInt32BE(0, 0);
    at = head.writeInt32BE(1, at);
    at = head.writeInt16BE(name.length, at);
    at += name.copy(head, at);
    at = head.writeInt32BE(1, at);
    at = head.writeInt32BE(3, at);
    at = head.writeInt16BE(code, at);
    at += 16;
    at = head.writeInt32BE(-1, at);
    head.writeInt32BE(records.length, at);
    return Buffer.concat([head, records]);
  }
  async function batch(base: number, values: string[], gzip = false): Promise<Buffer> {
    const body = encodeProduceV3(-1, 1000, [{ topic: 't', partitions: [{ partition: 3, messages: values.map((value, i) => ({ key: i % 2 ? null : `k${i}`, value })) }] }]);
    const b = Buffer.from((await decodeProduce(body)).topics[0].partitions[0].bytes);
    b.writeBigInt64BE(BigInt(base), 0);
    if (!gzip) return b;
    const { gzipSync } = await import('node:zlib');
    const z = Buffer.concat([b.subarray(0, 61), gzipSync(b.subarray(61))]);
    z.writeInt32BE(z.length - 12, 8);
    z.writeInt16BE(z.readInt16BE(21) | 1, 21);
    return z;
  }

  it('reads the records at or after the asked offset in place, inflates gzip batches, stops at a cut batch', async () => {
    const { gunzipSync } = await import('node:zlib');
    const res = response([await batch(100, ['a', 'bb', 'ccc']), await batch(103, ['dddd', 'é'], true)]);
    const r = decodeFetchV4(res, 101, gunzipSync, (c) => new Error(`code ${c}`));
    expect(Array.from(r.offsets.subarray(0, r.count))).toEqual([101, 102, 103, 104]);
    expect(Array.from({ length: r.count }, (_, i) => recordValue(r, i)!.toString())).toEqual(['bb', 'ccc', 'dddd', 'é']);
    expect(r.bufs[r.buf[0]]).toBe(res); // no copy
    expect(() => decodeFetchV4(response([Buffer.alloc(61)], 1), 0, gunzipSync, (c) => new Error(`code ${c}`))).toThrow('code 1');
  });

  it('builds record sets from values', () => {
    const r = recordSetOf([Buffer.from('x'), null, Buffer.from('yz')], 7);
    expect([r.count, recordValue(r, 0)!.toString(), recordValue(r, 1), recordValue(r, 2)!.toString(), r.offsets[2]]).toEqual([3, 'x', null, 'yz', 9]);
  });
});

/**
 * Kafka Produce request (v3) with one uncompressed RecordBatch (magic 2) per partition, encoded in one pass into
 * one buffer. kafkajs builds an Encoder object per record, a Long per varlong and copies every level into the next;
 * on a catch-up that was a third of the cdc's CPU. The cdc writes no headers, so what is left of the format is
 * small. An idempotent writer (producer.ts) fills in producerId, producerEpoch and baseSequence; the broker then
 * appends a partition's batches only in sequence order. https://kafka.apache.org/documentation/#recordbatch
 *
 *   Produce v3 => transactional_id:NULLABLE_STRING acks:INT16 timeout:INT32 [topic:STRING [partition:INT32 records:BYTES]]
 *   RecordBatch => baseOffset:INT64 batchLength:INT32 partitionLeaderEpoch:INT32 magic:INT8 crc:UINT32
 *     attributes:INT16 lastOffsetDelta:INT32 baseTimestamp:INT64 maxTimestamp:INT64 producerId:INT64
 *     producerEpoch:INT16 baseSequence:INT32 [Record]            (crc = CRC-32C from attributes to the end)
 *   Record => length:VARINT attributes:INT8 timestampDelta:VARLONG offsetDelta:VARINT key:VARINT+bytes
 *     value:VARINT+bytes headers:VARINT          (VARINT = zig-zag LEB128; a null key has length −1)
 */

export interface ProduceMessage { key: string | null; value: string }
export interface ProducePartition {
  partition: number;
  messages: readonly ProduceMessage[];
  /** Sequence number of the first message (idempotent producer); −1 (or absent) without a producer id. */
  baseSequence?: number;
}
/** An idempotent producer's identity (InitProducerId); without one the batch carries producer id −1. */
export interface ProducerIdentity { id: bigint; epoch: number }
export interface ProduceTopic { topic: string; partitions: ProducePartition[] }

const BATCH_HEADER = 61; // baseOffset … record count
const CRC_FROM = 21; // attributes start: baseOffset 8 + length 4 + epoch 4 + magic 1 + crc 4

/** Bytes of a zig-zag varint of a 32-bit signed value. */
function varintSize(n: number): number {
  let u = ((n << 1) ^ (n >> 31)) >>> 0;
  let size = 1;
  while (u >= 0x80) { u >>>= 7; size++; }
  return size;
}

function writeVarint(buf: Buffer, at: number, n: number): number {
  let u = ((n << 1) ^ (n >> 31)) >>> 0;
  while (u >= 0x80) { buf[at++] = (u & 0x7f) | 0x80; u >>>= 7; }
  buf[at++] = u;
  return at;
}

function writeInt64(buf: Buffer, at: number, n: number): number {
  // Exact for |n| < 2^53 (timestamps, −1).
  buf.writeInt32BE(Math.floor(n / 2 ** 32), at);
  buf.writeUInt32BE(n >>> 0, at + 4);
  return at + 8;
}

/** The Produce v3 request body (what follows the request header). */
export function encodeProduceV3(acks: number, timeoutMs: number, topics: ProduceTopic[], now = Date.now(), producer: ProducerIdentity | null = null): Buffer {
  // Pass 1: sizes. Per message: key bytes, value bytes and the record body's length.
  let count = 0;
  for (const t of topics) for (const p of t.partitions) count += p.messages.length;
  const keyLen = new Int32Array(count);
  const valLen = new Int32Array(count);
  const bodyLen = new Int32Array(count);
  let total = 2 + 2 + 4 + 4;
  let i = 0;
  for (const t of topics) {
    total += 2 + Buffer.byteLength(t.topic) + 4;
    for (const p of t.partitions) {
      total += 4 + 4 + BATCH_HEADER;
      for (let d = 0; d < p.messages.length; d++, i++) {
        const m = p.messages[d];
        const k = m.key === null ? -1 : Buffer.byteLength(m.key);
        const v = Buffer.byteLength(m.value);
        keyLen[i] = k; valLen[i] = v;
        const body = 1 + 1 + varintSize(d) + varintSize(k) + Math.max(k, 0) + varintSize(v) + v + 1;
        bodyLen[i] = body;
        total += varintSize(body) + body;
      }
    }
  }
  // Pass 2: bytes.
  const buf = Buffer.allocUnsafe(total);
  let at = buf.writeInt16BE(-1, 0); // no transactional id
  at = buf.writeInt16BE(acks, at);
  at = buf.writeInt32BE(timeoutMs, at);
  at = buf.writeInt32BE(topics.length, at);
  i = 0;
  for (const t of topics) {
    const tl = Buffer.byteLength(t.topic);
    at = buf.writeInt16BE(tl, at);
    at += buf.write(t.topic, at, tl, 'utf8');
    at = buf.writeInt32BE(t.partitions.length, at);
    for (const p of t.partitions) {
      at = buf.writeInt32BE(p.partition, at);
      const sizeAt = at;
      at += 4;
      const batch = at;
      at = writeInt64(buf, at, 0); // base offset (the broker assigns it)
      at += 4; // batch length, below
      at = buf.writeInt32BE(-1, at); // partition leader epoch: none
      buf[at++] = 2; // magic
      at += 4; // crc, below
      at = buf.writeInt16BE(0, at); // attributes: no compression, create time, not transactional
      at = buf.writeInt32BE(p.messages.length - 1, at);
      at = writeInt64(buf, at, now);
      at = writeInt64(buf, at, now);
      if (producer) {
        at = buf.writeBigInt64BE(producer.id, at);
        at = buf.writeInt16BE(producer.epoch, at);
        at = buf.writeInt32BE(p.baseSequence ?? -1, at);
      } else {
        at = writeInt64(buf, at, -1); // producer id: none
        at = buf.writeInt16BE(-1, at);
        at = buf.writeInt32BE(-1, at);
      }
      at = buf.writeInt32BE(p.messages.length, at);
      for (let d = 0; d < p.messages.length; d++, i++) {
        const m = p.messages[d];
        at = writeVarint(buf, at, bodyLen[i]);
        buf[at++] = 0; // attributes
        buf[at++] = 0; // timestamp delta 0
        at = writeVarint(buf, at, d);
        at = writeVarint(buf, at, keyLen[i]);
        if (m.key !== null) at += buf.write(m.key, at, keyLen[i], 'utf8');
        at = writeVarint(buf, at, valLen[i]);
        at += buf.write(m.value, at, valLen[i], 'utf8');
        buf[at++] = 0; // no headers
      }
      buf.writeInt32BE(at - batch, sizeAt);
      buf.writeInt32BE(at - batch - 12, batch + 8);
      buf.writeUInt32BE(crc32c(buf, batch + CRC_FROM, at), batch + 17);
    }
  }
  if (at !== total) throw new Error(`produce encoding: wrote ${at} bytes, sized ${total}`);
  return buf;
}

/** One partition's answer in a Produce v3 response. */
export interface ProducePartitionResponse { topic: string; partition: number; errorCode: number; baseOffset: bigint }

/**
 * The per-partition answers of a Produce v3 response, errors included (kafkajs's decoder throws the first error,
 * which hides which partitions were written).
 *
 *   Produce v3 response => [topic:STRING [partition:INT32 error:INT16 baseOffset:INT64 logAppendTime:INT64]] throttle:INT32
 */
export function decodeProduceV3Response(res: Buffer): ProducePartitionResponse[] {
  const out: ProducePartitionResponse[] = [];
  const topics = res.readInt32BE(0);
  let at = 4;
  for (let t = 0; t < topics; t++) {
    const len = res.readInt16BE(at); at += 2;
    const topic = res.toString('utf8', at, at + len); at += len;
    const parts = res.readInt32BE(at); at += 4;
    for (let p = 0; p < parts; p++) {
      out.push({ topic, partition: res.readInt32BE(at), errorCode: res.readInt16BE(at + 4), baseOffset: res.readBigInt64BE(at + 6) });
      at += 22;
    }
  }
  return out;
}

/** CRC-32C (Castagnoli), slicing by 8. */
const T = (() => {
  const t = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) for (let s = 1; s < 8; s++) t[s * 256 + n] = (t[(s - 1) * 256 + n] >>> 8) ^ t[t[(s - 1) * 256 + n] & 0xff];
  return t;
})();

export function crc32c(buf: Uint8Array, from = 0, to = buf.length): number {
  let c = ~0;
  let i = from;
  for (; i + 8 <= to; i += 8) {
    const a = c ^ (buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24));
    c = T[7 * 256 + (a & 0xff)] ^ T[6 * 256 + ((a >>> 8) & 0xff)] ^ T[5 * 256 + ((a >>> 16) & 0xff)] ^ T[4 * 256 + (a >>> 24)]
      ^ T[3 * 256 + buf[i + 4]] ^ T[2 * 256 + buf[i + 5]] ^ T[256 + buf[i + 6]] ^ T[buf[i + 7]];
  }
  for (; i < to; i++) c = T[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

// ---- reading: Fetch v4 responses into record sets, without an object per record ---------------------------------

/**
 * Records of one partition as read from a Fetch response, in offset order: for record i its offset and where its
 * value lies (`bufs[buf[i]]` from `valueStart[i]` to `valueEnd[i]`; start −1 for a null value). Uncompressed
 * batches are read in place in the response; gzip ones are inflated. Nothing is allocated per record.
 */
export interface RecordSet {
  count: number;
  offsets: Float64Array;
  bufs: Buffer[];
  buf: Uint8Array;
  valueStart: Int32Array;
  valueEnd: Int32Array;
}

/** The value of record i (a view, no copy), or null. */
export function recordValue(r: RecordSet, i: number): Buffer | null {
  return r.valueStart[i] < 0 ? null : r.bufs[r.buf[i]].subarray(r.valueStart[i], r.valueEnd[i]);
}

/** A record set holding these values at offsets first, first + 1, … (tests, and callers holding messages). */
export function recordSetOf(values: (Buffer | null)[], first = 0): RecordSet {
  const r = emptyRecordSet(values.length);
  const bufs = values.map((v) => v ?? Buffer.alloc(0));
  r.bufs.push(Buffer.concat(bufs));
  let at = 0;
  values.forEach((v, i) => {
    r.offsets[i] = first + i;
    r.valueStart[i] = v === null ? -1 : at;
    r.valueEnd[i] = at + bufs[i].length;
    at += bufs[i].length;
  });
  r.count = values.length;
  return r;
}

function emptyRecordSet(n: number): RecordSet {
  return { count: 0, offsets: new Float64Array(n), bufs: [], buf: new Uint8Array(n), valueStart: new Int32Array(n), valueEnd: new Int32Array(n) };
}

/** Fetch v4 request body for one partition (READ_UNCOMMITTED, no wait). */
export function encodeFetchV4(topic: string, partition: number, offset: bigint, maxBytes: number): Buffer {
  const name = Buffer.from(topic);
  const buf = Buffer.alloc(4 + 4 + 4 + 4 + 1 + 4 + 2 + name.length + 4 + 4 + 8 + 4);
  let at = buf.writeInt32BE(-1, 0); // replica id
  at = buf.writeInt32BE(0, at); // max wait
  at = buf.writeInt32BE(1, at); // min bytes
  at = buf.writeInt32BE(maxBytes, at);
  at = buf.writeInt8(0, at); // isolation level
  at = buf.writeInt32BE(1, at);
  at = buf.writeInt16BE(name.length, at);
  at += name.copy(buf, at);
  at = buf.writeInt32BE(1, at);
  at = buf.writeInt32BE(partition, at);
  at = buf.writeBigInt64BE(offset, at);
  buf.writeInt32BE(maxBytes, at);
  return buf;
}

/**
 * The records at offsets ≥ `from` of the one partition in a Fetch v4 response (`gunzip` inflates a gzip batch).
 *
 *   Fetch v4 response => throttle:INT32 [topic:STRING [partition:INT32 error:INT16 hw:INT64 lso:INT64
 *                        [aborted: producerId:INT64 firstOffset:INT64] records:BYTES]]
 */
export function decodeFetchV4(res: Buffer, from: number, gunzip: (b: Buffer) => Buffer, errorOf: (code: number) => Error): RecordSet {
  let at = 4;
  const topics = res.readInt32BE(at); at += 4;
  if (topics !== 1) throw new Error(`Fetch response with ${topics} topics, 1 asked`);
  at += 2 + res.readInt16BE(at);
  const parts = res.readInt32BE(at); at += 4;
  if (parts !== 1) throw new Error(`Fetch response with ${parts} partitions, 1 asked`);
  at += 4;
  const code = res.readInt16BE(at); at += 2;
  if (code !== 0) throw errorOf(code);
  at += 16;
  const aborted = res.readInt32BE(at); at += 4;
  if (aborted > 0) at += 16 * aborted;
  const size = res.readInt32BE(at); at += 4;
  const end = size < 0 ? at : Math.min(at + size, res.length);
  const r = emptyRecordSet(Math.ceil((end - at) / 128)); // grown when records are smaller

  r.bufs.push(res);
  while (at + BATCH_HEADER <= end) {
    const base = res.readUInt32BE(at) * 2 ** 32 + res.readUInt32BE(at + 4);
    const length = res.readInt32BE(at + 8);
    const batchEnd = at + 12 + length;
    if (batchEnd > end) break; // cut by maxBytes
    if (res[at + 16] !== 2) throw new Error(`record batch magic ${res[at + 16]} at offset ${base}: only magic 2 (Kafka ≥ 0.11) is read`);
    const attributes = res.readInt16BE(at + 21);
    const count = res.readInt32BE(at + 57);
    if (!(attributes & 0x20)) { // not a control batch (transaction markers)
      const codec = attributes & 7;
      if (codec === 0) readRecords(r, res, 0, at + BATCH_HEADER, batchEnd, count, base, from);
      else if (codec === 1) {
        const inflated = gunzip(res.subarray(at + BATCH_HEADER, batchEnd));
        r.bufs.push(inflated);
        readRecords(r, inflated, r.bufs.length - 1, 0, inflated.length, count, base, from);
      } else throw new Error(`record batch at offset ${base} is compressed with codec ${codec}: only none and gzip are read (set compression.type=none or gzip on the topic)`);
    }
    at = batchEnd;
  }
  return r;
}

function readRecords(r: RecordSet, b: Buffer, bi: number, at: number, end: number, count: number, base: number, from: number): void {
  let p = at;
  const varint = () => {
    let u = 0, shift = 0, c: number;
    do { c = b[p++]; u |= (c & 0x7f) << shift; shift += 7; } while (c & 0x80 && shift < 35);
    return (u >>> 1) ^ -(u & 1);
  };
  for (let k = 0; k < count && p < end; k++) {
    const length = varint();
    const next = p + length;
    p++; // attributes
    while (b[p++] & 0x80); // timestamp delta (varlong)
    const offset = base + varint();
    const keyLength = varint();
    if (keyLength > 0) p += keyLength;
    const valueLength = varint();
    if (offset >= from) {
      if (r.count === r.offsets.length) grow(r);
      const i = r.count++;
      r.offsets[i] = offset;
      r.buf[i] = bi;
      r.valueStart[i] = valueLength < 0 ? -1 : p;
      r.valueEnd[i] = valueLength < 0 ? -1 : p + valueLength;
    }
    p = next;
  }
}

function grow(r: RecordSet): void {
  const n = 2 * r.offsets.length + 16;
  const o = new Float64Array(n); o.set(r.offsets); r.offsets = o;
  const b = new Uint8Array(n); b.set(r.buf); r.buf = b;
  const s = new Int32Array(n); s.set(r.valueStart); r.valueStart = s;
  const e = new Int32Array(n); e.set(r.valueEnd); r.valueEnd = e;
}

/**
 * The soak's audit of the change topic, read end to end once the load has stopped: no change twice (its position
 * lsn/seq is unique), changes in commit order within each partition, and the insert events of each table as many
 * as the source table's rows (the generator only inserts, so nothing lost). Streams partition by partition and
 * keeps only the positions, so a 30-minute soak's topic fits in memory.
 */
import { decodeEvent, type RowChange } from '../../lib/events.ts';
import { comparePosition } from '../../lib/lsn.ts';
import { TopicReader, type Kafka } from '../../lib/kafka/index.ts';

export interface TopicAudit {
  /** Row changes read (heartbeats left out). */
  changes: number;
  duplicates: number;
  /** Places where a partition's next change is not after the previous one. */
  outOfOrder: number;
  /** Insert events per table (`public.payments` …). */
  inserts: Record<string, number>;
  /** The first few problems, for the check's detail. */
  examples: string[];
}

export async function auditTopic(kafka: Kafka, topic: string): Promise<TopicAudit> {
  const reader = await TopicReader.open(kafka, topic);
  const seen = new Set<string>();
  const audit: TopicAudit = { changes: 0, duplicates: 0, outOfOrder: 0, inserts: {}, examples: [] };
  const problem = (what: string) => { if (audit.examples.length < 5) audit.examples.push(what); };
  try {
    for (const [p, { low, high }] of await reader.watermarks()) {
      let prev: { lsn: string; seq: number } | null = null;
      for (let off = low; off < high;) {
        const msgs = (await reader.fetch(p, off, 8 << 20)).filter((m) => m.offset < high);
        if (!msgs.length) break;
        for (const m of msgs) {
          const e = decodeEvent(m.value);
          if (prev && comparePosition(prev, e) >= 0) { audit.outOfOrder++; problem(`p${p}@${m.offset}: ${e.lsn}/${e.seq} after ${prev.lsn}/${prev.seq}`); }
          prev = e;
          if (e.op === 'heartbeat') continue;
          const pos = `${e.lsn}/${e.seq}`;
          if (seen.has(pos)) { audit.duplicates++; problem(`p${p}@${m.offset}: ${pos} twice`); }
          seen.add(pos);
          audit.changes++;
          const c = e as RowChange;
          if (c.op === 'insert') audit.inserts[c.table] = (audit.inserts[c.table] ?? 0) + 1;
        }
        off = msgs[msgs.length - 1].offset + 1n;
      }
    }
    return audit;
  } finally {
    await reader.close();
  }
}

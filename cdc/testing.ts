/** Shared by the cdc integration tests: a cdc child process and a full read of a topic. */
import type { ChildProcess } from 'node:child_process';
import { decodeEvent, type ChangeEvent } from '../lib/events.ts';
import { createKafka, kafkaConfigOf, TopicReader, type Kafka } from '../lib/kafka/index.ts';
import { spawnRiskmon } from '../test/harness/index.ts';

export function kafkaOf(brokers: string): Kafka {
  return createKafka(kafkaConfigOf(brokers), { clientId: 'riskmon-cdc-test' });
}

/**
 * Starts `riskmon cdc` as a child process; its log goes to `logs` (kept for failure messages). Without a history
 * backfill unless `env` asks for one: these tests read the topic, and a backfill would write the buckets of the
 * Redis prefix in the environment.
 */
export function spawnCdc(env: Record<string, string>, logs: string[] = []): ChildProcess {
  return spawnRiskmon(['cdc'], { env: { ...process.env, RISKMON_LOG_LEVEL: 'info', RISKMON_BACKFILL_DAYS: '0', ...env }, logs });
}

export interface Read { partition: number; offset: bigint; key: string | null; event: ChangeEvent }

/** Every message of every partition, in offset order per partition. */
export async function readAll(kafka: Kafka, topic: string): Promise<Read[]> {
  const reader = await TopicReader.open(kafka, topic);
  try {
    const out: Read[] = [];
    for (const [p, { low, high }] of await reader.watermarks()) {
      for (let off = low; off < high;) {
        const msgs = (await reader.fetch(p, off, 8 << 20)).filter((m) => m.offset < high);
        if (!msgs.length) break;
        for (const m of msgs) out.push({ partition: p, offset: m.offset, key: m.key?.toString() ?? null, event: decodeEvent(m.value) });
        off = msgs[msgs.length - 1].offset + 1n;
      }
    }
    return out;
  } finally {
    await reader.close();
  }
}

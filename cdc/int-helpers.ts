/** Shared by the cdc integration tests and the benchmark: a cdc child process and a full read of a topic. */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeEvent, type ChangeEvent } from '../lib/events.ts';
import { createKafka, kafkaConfigOf, TopicReader, type Kafka } from '../lib/kafka/index.ts';
import { riskmonArgv } from '../lib/launch.ts';
import { waitFor } from '../test/helpers/services.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export function kafkaOf(brokers: string): Kafka {
  return createKafka(kafkaConfigOf(brokers), { clientId: 'riskmon-cdc-test' });
}

/** Starts `riskmon cdc` as a child process; its log goes to `logs` (kept for failure messages). */
export function spawnCdc(env: Record<string, string>, logs: string[] = []): ChildProcess {
  const child = spawn(process.execPath, riskmonArgv(['cdc']), {
    cwd: ROOT, env: { ...process.env, RISKMON_LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (b: Buffer) => { logs.push(b.toString()); if (logs.length > 400) logs.splice(0, 200); };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return child;
}

/**
 * True once a walsender streams from `slot`. (pg_replication_slots.active alone is also true while the slot is
 * being created, before changes are captured.)
 */
export async function streaming(db: { query: (q: string, v: unknown[]) => Promise<{ rows: any[] }> }, slot: string): Promise<boolean> {
  const { rows } = await db.query(
    'SELECT 1 FROM pg_replication_slots s JOIN pg_stat_replication r ON r.pid = s.active_pid WHERE s.slot_name = $1', [slot]);
  return rows.length > 0;
}

/** Drops a test's slot once its cdc has let go of it: a leftover slot keeps the shared server's WAL forever. */
export async function dropSlot(db: { query: (q: string, v: unknown[]) => Promise<unknown> }, slot: string): Promise<void> {
  await waitFor(() => db.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slot]).then(() => true, () => false),
    { timeoutMs: 15_000, message: 'slot still active' }).catch(() => {});
}

export function waitExit(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((r) => child.once('exit', (code) => r(code)));
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

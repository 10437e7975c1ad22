/**
 * The short soak (test/soak/run.ts): two minutes of live load with bursts, late rows and two injected anomalies
 * while cdc, aggregate, alerting and api are each SIGKILLed and restarted and Kafka, Redis and PostgreSQL are
 * restarted — then every bucket equals the SQL truth, each anomaly alerted once (once on Slack), nothing else
 * alerted, the slot, the consumer group and the dead-letter topic are settled, and every change is on the topic
 * once, in commit order. On a stack of its own (it restarts services), removed afterwards. The long form:
 * `npx tsx scripts/soak.ts --minutes 30` (`--topology replicated` on three brokers and a Redis Cluster).
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stackDown } from '../scripts/stack/index.ts';
import { nativeStackMissing, uniqueName } from './harness/services.ts';
import { runSoak } from './soak/run.ts';

const dir = path.join(import.meta.dirname, '..', '.riskmon', uniqueName('soak_stack'));

const missing = await nativeStackMissing();
if (missing) console.warn(`[soak] skipped: it restarts services on a native stack, which cannot run here: ${missing}`);

describe.skipIf(missing !== null)('soak with faults', () => {
  afterAll(async () => {
    await stackDown(dir, { purge: true, log: () => {} });
  }, 120_000);

  it('keeps every count exact and alerts once per anomaly through crashes and service restarts', async () => {
    const r = await runSoak({ minutes: 2, tps: 50, burstTps: 300, dir, merchants: 2000 });
    console.log(`[soak] faults: ${r.faults.map((f) => f.what).join(', ')}\n[soak] figures: ${JSON.stringify(r.figures)}`);
    expect(r.faults).toHaveLength(7);
    expect(r.checks.filter((c) => !c.ok)).toEqual([]);
  }, 420_000); // ~4 minutes on a quiet machine; the topic audit reads ~500k changes (8–30 s)
});

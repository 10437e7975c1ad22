/**
 * What replication costs (`npm run bench -- --only topology`): the pipeline figures measured on the single-node
 * stack (one Kafka broker, one Redis) and on the replicated topology (scripts/stack/replicated.ts: three KRaft
 * brokers with RF 3 and min.insync.replicas 2, acks=all; a Redis Cluster of three masters with a replica each), in the
 * same run, one part after the other on each (cdc single, cdc replicated, aggregator single, …) so drift in the
 * machine's load hits both alike. The measuring is the other parts' own, on smaller backlogs:
 *   - bench/cdc.ts: catch-up changes/s on a backlog of RISKMON_BENCH_TOPOLOGY_CDC_BACKLOG (200,000) single-row
 *     transactions, pg_recvlogical on the same backlog, commit → Kafka p50/p99 at 5,000 TPS asked; on the replicated
 *     stack also Debezium (bench/peer.ts: its topic RF 3, acks=all) on the same backlog and fixed-rate phase, and
 *     Kafka's producer tool (RISKMON_BENCH_TOPOLOGY_PEER: `replicated` (default), `both`, `0`);
 *   - bench/aggregator.ts: replay and live-path catch-up on RISKMON_BENCH_TOPOLOGY_AGG_CHANGES (300,000) changes;
 *   - bench/pipeline.ts: cdc + aggregate + alerting under the live generator, RISKMON_BENCH_PIPELINE_RUN_S (30) s per
 *     phase (35 TPS, 5,000 TPS, 10,000 TPS), no poller: commit → bucket p50/p99 at 5,000 TPS asked, commit → Kafka,
 *     the minute close → Slack / pub/sub alert latency.
 * Every figure is written as `single_<key>` and `replicated_<key>`; `replication_cost_<key>` = replicated / single
 * (> 1 for a latency: slower; < 1 for a throughput: slower).
 * RISKMON_BENCH_TOPOLOGY_PARTS picks some of the three parts.
 * The replicated stack is the development one's (`npm run stack -- up --topology replicated`, under the same data
 * folder), started when it is not running and left running, as the runner leaves the single-node stack;
 * RISKMON_BENCH_REPLICATED_DIR puts it in a folder of its own instead (a shared machine: a private cluster, stopped
 * with `replicatedDown` from scripts/stack/replicated.ts when done).
 */
import { replicatedDir, replicatedUp } from '../scripts/stack/replicated.ts';
import { defaultStackDir } from '../scripts/stack/index.ts';
import { throughput } from './aggregator.ts';
import { benchCdc } from './cdc.ts';
import { benchPipeline } from './pipeline.ts';

type Env = NodeJS.ProcessEnv & { PG_URL: string; KAFKA_BROKERS: string };

/** The figures compared as replicated / single. */
const COMPARED = [
  'cdc_catchup_changes_per_s', 'cdc_catchup_ratio_to_pg_recvlogical', 'cdc_publish_p50_ms', 'cdc_publish_p99_ms',
  'replay_changes_per_s', 'aggregator_catchup_changes_per_s',
  'commit_to_bucket_p50_ms', 'commit_to_bucket_p99_ms', 'commit_to_kafka_p50_ms', 'commit_to_kafka_p99_ms',
  'pipeline_alert_latency_p50_ms', 'pipeline_alert_latency_p99_ms', 'live_kept_up_at_tps',
];

export async function benchTopology(env: Env): Promise<Record<string, number>> {
  const dir = env.RISKMON_BENCH_REPLICATED_DIR || replicatedDir(defaultStackDir(env));
  const rep = await replicatedUp(dir, { parts: ['kafka', 'cluster'], env, log: (l) => console.error(`   ${l}`) });
  const stacks: [string, Env][] = [
    ['single', { ...env, RISKMON_REDIS_MODE: 'standalone' }],
    ['replicated', { ...env, KAFKA_BROKERS: rep.KAFKA_BROKERS!, REDIS_URL: rep.REDIS_CLUSTER_URL!, RISKMON_REDIS_MODE: 'cluster' }],
  ];
  const knobs = {
    RISKMON_BENCH_AGG_CHANGES: env.RISKMON_BENCH_TOPOLOGY_AGG_CHANGES ?? '300000',
    RISKMON_BENCH_PIPELINE_RUN_S: env.RISKMON_BENCH_PIPELINE_RUN_S ?? '30',
    RISKMON_BENCH_MAX_TPS: env.RISKMON_BENCH_MAX_TPS ?? '10000',
    RISKMON_BENCH_POLLER_DAYS: '',
  };
  const backlog = Number(env.RISKMON_BENCH_TOPOLOGY_CDC_BACKLOG ?? 200_000);
  const peerOn = env.RISKMON_BENCH_TOPOLOGY_PEER ?? 'replicated';
  if (!['replicated', 'both', '0'].includes(peerOn)) throw new Error(`RISKMON_BENCH_TOPOLOGY_PEER must be replicated, both or 0 (got ${peerOn})`);
  const peerFor = (e: Env) => {
    const on = peerOn === 'both' || (peerOn === 'replicated' && e.KAFKA_BROKERS === rep.KAFKA_BROKERS);
    return { nullReader: false, debezium: on, ceiling: on };
  };
  const all: [string, (e: Env) => Promise<Record<string, number>>][] = [
    ['cdc', (e) => benchCdc(e, { backlog, peer: peerFor(e) })],
    ['aggregator', async (e) => { const out: Record<string, number> = {}; await throughput(e, out); return out; }],
    ['pipeline', (e) => benchPipeline(e)],
  ];
  // RISKMON_BENCH_TOPOLOGY_PARTS: some of cdc,aggregator,pipeline (default all)
  const only = (env.RISKMON_BENCH_TOPOLOGY_PARTS ?? '').split(',').filter(Boolean);
  const unknown = only.filter((x) => !all.some(([n]) => n === x));
  if (unknown.length) throw new Error(`RISKMON_BENCH_TOPOLOGY_PARTS: ${unknown.join(', ')} unknown (cdc, aggregator, pipeline)`);
  const parts = only.length ? all.filter(([n]) => only.includes(n)) : all;
  const out: Record<string, number> = { topology_cdc_backlog_changes: backlog, topology_agg_changes: Number(knobs.RISKMON_BENCH_AGG_CHANGES) };
  for (const [part, run] of parts) {
    for (const [name, e] of stacks) {
      console.error(`   -- ${part} on the ${name} stack --`);
      let figures: Record<string, number>;
      try {
        figures = await run({ ...e, ...knobs });
      } catch (err) {
        // one part failing on one stack (a busy machine: a start timing out) keeps the others' figures
        console.error(`   ${part} on the ${name} stack FAILED: ${(err as Error).stack ?? err}`);
        out[`${name}_${part}_failed`] = 1;
        continue;
      }
      for (const [k, v] of Object.entries(figures)) {
        // the replay's Redis CPU is read from one server's INFO: on a cluster that is one master of three, left out
        if (name === 'replicated' && k.startsWith('replay_redis_')) continue;
        out[`${name}_${k}`] = v;
      }
    }
  }
  // riskmon against Debezium and the ceilings inside each stack's run of the same backlog
  for (const name of ['single', 'replicated']) {
    const cdc = out[`${name}_cdc_catchup_changes_per_s`];
    for (const [k, of] of [['debezium', 'debezium_catchup_changes_per_s'], ['kafka_producer_ceiling', 'kafka_producer_ceiling_records_per_s']]) {
      const v = out[`${name}_${of}`];
      if (Number.isFinite(cdc) && Number.isFinite(v) && v > 0) out[`${name}_cdc_catchup_ratio_to_${k}`] = Math.round((cdc / v) * 1000) / 1000;
    }
  }
  // the cdc's produce settings compared on the replicated stack in the same run (RISKMON_BENCH_TOPOLOGY_VARIANTS,
  // e.g. `lanes3:RISKMON_CDC_PRODUCE_LANES=3,inflight1:RISKMON_CDC_PRODUCE_IN_FLIGHT=1`): the cdc part alone, no peer,
  // its figures as `replicated_<variant>_<key>` beside the defaults'
  for (const v of (env.RISKMON_BENCH_TOPOLOGY_VARIANTS ?? '').split(',').filter(Boolean)) {
    const [variant, ...sets] = v.split(':');
    const extra = Object.fromEntries(sets.join(':').split(';').filter(Boolean).map((kv) => kv.split('=') as [string, string]));
    if (!/^\w+$/.test(variant) || !Object.keys(extra).length) throw new Error(`RISKMON_BENCH_TOPOLOGY_VARIANTS: "${v}" is not name:VAR=value[;VAR=value]`);
    console.error(`   -- cdc on the replicated stack, ${variant} (${JSON.stringify(extra)}) --`);
    const e = { ...stacks[1][1], ...knobs, ...extra };
    for (const [k, val] of Object.entries(await benchCdc(e, { backlog, peer: false }))) out[`replicated_${variant}_${k}`] = val;
  }
  for (const k of COMPARED) {
    const s = out[`single_${k}`], r = out[`replicated_${k}`];
    if (Number.isFinite(s) && Number.isFinite(r) && s > 0) out[`replication_cost_${k}`] = Math.round((r / s) * 1000) / 1000;
  }
  return out;
}

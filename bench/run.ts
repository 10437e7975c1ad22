/**
 * `npm run bench -- [--out FILE.json] [--only cdc,aggregator,…]`: the benchmark suite. Each part is a module in
 * bench/ exporting one async function that returns named figures; this runner starts (or reuses, from env) the
 * local services, runs the parts that exist one after another, prints a table, and writes the JSON with `machine`
 * and `date` plus a markdown table beside it (FILE.md).
 *
 * Figures are whatever one run measured on a shared, noisy machine: quote medians of several runs (run it
 * several times, then `npm run bench -- --median a.json b.json c.json --out median.json`) or ratios measured inside
 * one run (cdc vs pg_recvlogical, riskmon vs the SQL poller).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { stackUp, type StackEnv } from '../scripts/stack/index.ts';

type Figures = Record<string, number | string | Record<string, number>>;
type Bench = (env: NodeJS.ProcessEnv & StackEnv) => Promise<Record<string, number>>;
/** Each part is loaded only when it runs (a part's dependencies stay out of the others' runs). */
type Part = { name: string; load: () => Promise<Bench>; onlyWhenAsked?: boolean };

const PARTS: Part[] = [
  { name: 'generate', load: async () => (await import('./generate.ts')).benchGenerate },
  { name: 'cdc', load: async () => (await import('./cdc.ts')).benchCdc },
  { name: 'cdc-growth', load: async () => (await import('./cdc.ts')).benchCdcGrowth },
  { name: 'aggregator', load: async () => (await import('./aggregator.ts')).benchAggregator },
  { name: 'growth', load: async () => (await import('./aggregator.ts')).benchGrowth },
  // 1× beside 10× (1M merchants, 30M tx/day): memory, window read, alert latency, backtest (~30 min on a busy machine)
  { name: 'growth-10x', load: async () => (await import('./growth-10x.ts')).benchGrowth10x, onlyWhenAsked: true },
  { name: 'alerting', load: async () => (await import('./alerting.ts')).benchAlerting },
  { name: 'exposure', load: async () => (await import('./exposure.ts')).benchExposure },
  { name: 'window', load: async () => (await import('./window.ts')).benchWindow },
  { name: 'backtest', load: async () => (await import('./backtest.ts')).benchBacktest },
  { name: 'api', load: async () => (await import('./api.ts')).benchApi },
  { name: 'pipeline', load: async () => (await import('./pipeline.ts')).benchPipeline },
  { name: 'startup', load: async () => (await import('./startup.ts')).benchStartup },
  { name: 'backfill', load: async () => (await import('./backfill.ts')).benchBackfill },
  // not in a plain `npm run bench` (it starts the replicated stack): `npm run bench -- --only topology`
  { name: 'topology', load: async () => (await import('./topology.ts')).benchTopology, onlyWhenAsked: true },
  // likewise (a JVM beside riskmon on one change topic, ~10 minutes): `npm run bench -- --only flink`
  { name: 'flink', load: async () => (await import('./flink.ts')).benchFlink, onlyWhenAsked: true },
  // likewise (its own stacks, kills and restarts): `npm run bench -- --only faults`
  { name: 'faults', load: async () => (await import('./faults.ts')).benchFaults, onlyWhenAsked: true },
];

/** The keys the target figures (docs/benchmarks.md) require in the JSON; the runner names any that no part produced. */
const REQUIRED = ['cdc_catchup_changes_per_s', 'pg_recvlogical_changes_per_s', 'replay_changes_per_s', 'source_max_tps',
  'live_kept_up_at_tps', 'commit_to_bucket_p50_ms', 'commit_to_bucket_p99_ms', 'alert_latency_p99_ms', 'partition_skew',
  'redis_memory_8d_bytes', 'peak_rss_bytes', 'poller_source_cpu_ms_per_min', 'riskmon_source_cpu_ms_per_min',
  // issue 16: the peer and the ceilings measured in the same run
  'debezium_catchup_changes_per_s', 'debezium_commit_to_kafka_p99_ms', 'null_reader_changes_per_s', 'walsender_cpu_pct_null_reader',
  'kafka_producer_ceiling_records_per_s', 'redis_write_ceiling_ops_per_s', 'pipeline_alert_latency_samples'];

/**
 * Each riskmon figure against its ceiling and against Debezium, from the same run (a ratio inside one run is what
 * stays meaningful on a noisy shared machine): [key, numerator, denominator]. Throughputs: > 1 = riskmon faster;
 * latencies: < 1 = riskmon lower. The replay writes ~2–3 fields per change, so its ratio to an ops/s ceiling is a
 * comparison of rates, not of like units.
 */
const RATIOS: [string, string, string][] = [
  ['cdc_catchup_ratio_to_null_reader', 'cdc_catchup_changes_per_s', 'null_reader_changes_per_s'],
  ['cdc_catchup_ratio_to_debezium', 'cdc_catchup_changes_per_s', 'debezium_catchup_changes_per_s'],
  ['cdc_catchup_ratio_to_kafka_producer_ceiling', 'cdc_catchup_changes_per_s', 'kafka_producer_ceiling_records_per_s'],
  ['debezium_catchup_ratio_to_null_reader', 'debezium_catchup_changes_per_s', 'null_reader_changes_per_s'],
  ['cdc_publish_p99_ratio_to_debezium', 'cdc_publish_p99_ms', 'debezium_commit_to_kafka_p99_ms'],
  ['commit_to_kafka_p99_ratio_to_debezium', 'commit_to_kafka_p99_ms', 'debezium_commit_to_kafka_p99_ms'],
  ['replay_ratio_to_redis_hset_ceiling', 'replay_changes_per_s', 'redis_hset_ceiling_ops_per_s'],
  ['replay_ratio_to_lua_apply_ceiling', 'replay_changes_per_s', 'lua_apply_ceiling_changes_per_s'],
  ['aggregator_catchup_ratio_to_lua_apply_ceiling', 'aggregator_catchup_changes_per_s', 'lua_apply_ceiling_changes_per_s'],
  ['aggregator_catchup_ratio_to_redis_write_ceiling', 'aggregator_catchup_changes_per_s', 'redis_write_ceiling_ops_per_s'],
];

function addRatios(f: Figures): void {
  for (const [k, a, b] of RATIOS) {
    const x = f[a], y = f[b];
    if (typeof x === 'number' && typeof y === 'number' && y > 0 && Number.isFinite(x)) f[k] = Math.round((x / y) * 1000) / 1000;
  }
}

function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${os.cpus().length} cores (${cpu.trim()}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}, Node ${process.version}`;
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({ options: { out: { type: 'string' }, only: { type: 'string' }, median: { type: 'boolean' } }, allowPositionals: true });
  if (values.median) return writeOut(medianOf(positionals), values.out);
  const only = values.only ? new Set(values.only.split(',')) : null;
  const env: StackEnv = await stackUp({ log: (l) => console.error(l) });
  const figures: Figures = { machine: machine(), date: new Date().toISOString() };
  const rss: Record<string, number> = {};
  for (const part of PARTS) {
    if (only ? !only.has(part.name) : part.onlyWhenAsked) continue;
    console.error(`\n== ${part.name} ==`);
    const bench = await part.load();
    const t0 = Date.now();
    try {
      const out: Record<string, number> = await bench({ ...process.env, ...env });
      for (const [k, v] of Object.entries(out)) {
        // `<component>_peak_rss_bytes` figures are gathered into one object, as the targets ask; a component measured
        // by two parts (cdc alone on a backlog, and in the pipeline under the peak rate) keeps the larger peak.
        const m = /^(\w+?)_peak_rss_bytes$/.exec(k);
        if (m) rss[m[1]] = Math.max(rss[m[1]] ?? 0, v); else figures[k] = v;
      }
      // the machine's load beside every part's figures (1-minute load average at its end)
      figures[`load1_after_${part.name}`] = Math.round(os.loadavg()[0] * 100) / 100;
      console.error(`   ${part.name}: ${((Date.now() - t0) / 1000).toFixed(1)} s, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    } catch (err) {
      console.error(`   ${part.name} FAILED: ${(err as Error).stack ?? err}`);
      figures[`${part.name}_error`] = String((err as Error).message ?? err);
    }
  }
  if (Object.keys(rss).length) figures.peak_rss_bytes = rss;
  addRatios(figures);
  figures.load_average = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  const absent = REQUIRED.filter((k) => !(k in figures));
  if (absent.length && !only) console.error(`target figures that no part produced: ${absent.join(', ')}`);
  return writeOut(figures, values.out);
}

function writeOut(figures: Figures, out: string | undefined): number {
  const table = markdown(figures);
  console.log(table);
  if (out) {
    writeFileSync(out, JSON.stringify(figures, null, 2) + '\n');
    writeFileSync(out.replace(/\.json$/, '') + '.md', table + '\n');
    console.error(`wrote ${out}`);
  }
  return Object.keys(figures).some((k) => k.endsWith('_error')) ? 1 : 0;
}

/** Per-figure median of several runs' JSON files (numbers and per-component RSS); `runs` says how many. */
function medianOf(files: string[]): Figures {
  if (!files.length) throw new Error('--median needs the JSON files of several runs: npm run bench -- --median a.json b.json --out median.json');
  const runs = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as Figures);
  const med = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const h = s.length >> 1; return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2; };
  const out: Figures = { machine: String(runs[0].machine), date: runs.map((r) => r.date).join(', '), runs: runs.length };
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r)))].filter((k) => !['machine', 'date', 'runs'].includes(k));
  for (const k of keys) {
    const vals = runs.map((r) => r[k]).filter((v) => v !== undefined);
    if (vals.every((v) => typeof v === 'number')) out[k] = med(vals as number[]);
    else if (vals.every((v) => typeof v === 'object')) {
      const comps = [...new Set(vals.flatMap((v) => Object.keys(v as object)))];
      out[k] = Object.fromEntries(comps.map((c) => [c, med(vals.map((v) => (v as Record<string, number>)[c]).filter((x) => x !== undefined))]));
    } else out[k] = vals.map(String).join(' | ');
  }
  return out;
}

function fmt(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? v.toLocaleString('en-US') : v.toFixed(v < 10 ? 3 : 1);
  if (typeof v === 'object' && v) return Object.entries(v).map(([k, x]) => `${k} ${(Number(x) / 2 ** 20).toFixed(0)} MiB`).join(', ');
  return String(v);
}

/** The target figures (docs/benchmarks.md), shown beside the measured ones. */
const TARGET: Record<string, string> = {
  cdc_catchup_changes_per_s: '≥ 0.9× null reader, ≥ 2× Debezium', cdc_catchup_ratio_to_null_reader: '≥ 0.9',
  cdc_catchup_ratio_to_debezium: '≥ 2', commit_to_kafka_p99_ms: '≤ 35 at 5,000 TPS', pipeline_alert_latency_samples: '≥ 30',
  replay_changes_per_s: '≥ 150,000', live_kept_up_at_tps: '= source_max_tps',
  commit_to_bucket_p99_ms: '≤ 100 at 5,000 TPS', alert_latency_p99_ms: '≤ 1,000', pipeline_alert_latency_p99_ms: '≤ 1,000',
  partition_skew: '≤ 1.2', redis_memory_8d_bytes: '≤ 536,870,912', peak_rss_bytes: '≤ 300 MiB each',
};

function markdown(f: Figures): string {
  // The target figures' keys first, in their order, then the rest as the parts produced them.
  const keys = ['machine', 'date', 'runs', ...REQUIRED, ...Object.keys(f)].filter((k, i, a) => k in f && a.indexOf(k) === i);
  const rows = keys.map((k) => `| ${k} | ${fmt(f[k])} | ${TARGET[k] ?? ''} |`);
  return ['| figure | value | target |', '|---|---|---|', ...rows].join('\n');
}

process.exitCode = await main();

/**
 * `npm run bench -- [--out FILE.json] [--only cdc,aggregator,…]`: the benchmark suite. Each part is a module in
 * bench/ exporting one async function that returns named figures; this runner starts (or reuses, from env) the
 * local services, runs the parts that exist one after another, prints a table, and writes the JSON with `machine`
 * and `date` plus a markdown table beside it (FILE.md).
 *
 * Figures are whatever one run measured on a shared, noisy machine: quote medians of several runs (run it
 * several times) or ratios measured inside one run (cdc vs pg_recvlogical, riskmon vs the SQL poller).
 */
import { existsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { stackUp, type StackEnv } from '../scripts/stack-lib.ts';

type Figures = Record<string, number | string | Record<string, number>>;
type Part = { name: string; file: string; fn: string };

const PARTS: Part[] = [
  { name: 'generate', file: 'generate.ts', fn: 'benchGenerate' },
  { name: 'cdc', file: 'cdc.ts', fn: 'benchCdc' },
  { name: 'aggregator', file: 'aggregator.ts', fn: 'benchAggregator' },
  { name: 'alerting', file: 'alerting.ts', fn: 'benchAlerting' },
  { name: 'api', file: 'api.ts', fn: 'benchApi' },
  { name: 'pipeline', file: 'pipeline.ts', fn: 'benchPipeline' },
];

const here = dirname(fileURLToPath(import.meta.url));

function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${os.cpus().length} cores (${cpu.trim()}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}, Node ${process.version}`;
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { out: { type: 'string' }, only: { type: 'string' } } });
  const only = values.only ? new Set(values.only.split(',')) : null;
  const env: StackEnv = await stackUp({ log: (l) => console.error(l) });
  const figures: Figures = { machine: machine(), date: new Date().toISOString() };
  const rss: Record<string, number> = {};
  const missing: string[] = [];
  for (const part of PARTS) {
    if (only && !only.has(part.name)) continue;
    if (!existsSync(join(here, part.file))) { missing.push(part.name); continue; }
    console.error(`\n== ${part.name} ==`);
    const mod = await import(`./${part.file}`);
    const t0 = Date.now();
    try {
      const out: Record<string, number> = await mod[part.fn]({ ...process.env, ...env });
      for (const [k, v] of Object.entries(out)) {
        // `<component>_peak_rss_bytes` figures are gathered into one object, as DESIGN.md asks.
        const m = /^(\w+?)_peak_rss_bytes$/.exec(k);
        if (m) rss[m[1]] = v; else figures[k] = v;
      }
      console.error(`   ${part.name}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    } catch (err) {
      console.error(`   ${part.name} FAILED: ${(err as Error).stack ?? err}`);
      figures[`${part.name}_error`] = String((err as Error).message ?? err);
    }
  }
  if (Object.keys(rss).length) figures.peak_rss_bytes = rss;
  if (missing.length) console.error(`\nparts not built yet: ${missing.join(', ')}`);

  const table = markdown(figures);
  console.log(table);
  if (values.out) {
    writeFileSync(values.out, JSON.stringify(figures, null, 2) + '\n');
    writeFileSync(values.out.replace(/\.json$/, '') + '.md', table + '\n');
    console.error(`wrote ${values.out}`);
  }
  return Object.keys(figures).some((k) => k.endsWith('_error')) ? 1 : 0;
}

function fmt(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? v.toLocaleString('en-US') : v.toFixed(v < 10 ? 3 : 1);
  if (typeof v === 'object' && v) return Object.entries(v).map(([k, x]) => `${k} ${(Number(x) / 2 ** 20).toFixed(0)} MiB`).join(', ');
  return String(v);
}

function markdown(f: Figures): string {
  const rows = Object.entries(f).map(([k, v]) => `| ${k} | ${fmt(v)} |`);
  return ['| figure | value |', '|---|---|', ...rows].join('\n');
}

process.exitCode = await main();

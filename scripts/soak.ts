/**
 * The long soak: `npx tsx scripts/soak.ts --minutes 30 [--tps 100] [--burst-tps 5000] [--dir .riskmon/soak-stack]
 * [--merchants 2000] [--keep-stack] [--topology single|replicated] [--redis-mode cluster|sentinel]`. Runs
 * test/soak/run.ts on a stack of its own (never the development stack: it restarts PostgreSQL, Kafka and Redis, or
 * with `--topology replicated` kills brokers and Redis masters), prints every check and the figures, writes them as
 * JSON next to the component logs (and to `--out`), and exits non-zero when a check failed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runSoak } from '../test/soak/run.ts';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    tps: { type: 'string', default: '100' },
    'burst-tps': { type: 'string', default: '5000' },
    merchants: { type: 'string', default: '2000' },
    dir: { type: 'string', default: path.join(import.meta.dirname, '..', '.riskmon', 'soak-stack') },
    'keep-stack': { type: 'boolean', default: false },
    topology: { type: 'string', default: 'single' },
    'redis-mode': { type: 'string', default: 'cluster' },
    out: { type: 'string' },
  },
});
const topology = values.topology;
if (topology !== 'single' && topology !== 'replicated') { console.error(`--topology is single or replicated, got "${topology}"`); process.exit(2); }
const redisMode = values['redis-mode'];
if (redisMode !== 'cluster' && redisMode !== 'sentinel') { console.error(`--redis-mode is cluster or sentinel (with --topology replicated), got "${redisMode}"`); process.exit(2); }
const num = (k: 'minutes' | 'tps' | 'burst-tps' | 'merchants') => {
  const n = Number(values[k]);
  if (!(n > 0)) { console.error(`--${k} must be a positive number, got "${values[k]}"`); process.exit(2); }
  return n;
};
const result = await runSoak({
  minutes: num('minutes'), tps: num('tps'), burstTps: num('burst-tps'), merchants: num('merchants'),
  dir: path.resolve(values.dir!), keepStack: values['keep-stack'], topology, redisMode,
});
for (const out of [path.join(result.logDir, 'result.json'), ...(values.out ? [path.resolve(values.out)] : [])]) fs.writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
console.log(`\n${result.ok ? 'SOAK PASSED' : 'SOAK FAILED'} — ${result.checks.filter((c) => c.ok).length}/${result.checks.length} checks; faults: ${result.faults.map((f) => f.what).join(', ')}`);
console.log(JSON.stringify(result.figures, null, 2));
console.log(`result and component logs: ${result.logDir}`);
process.exit(result.ok ? 0 : 1);

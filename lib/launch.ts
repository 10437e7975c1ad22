/**
 * How riskmon's own tools start a component as a child process (`node [heap cap] scripts/riskmon[-dev].mjs <cmd>`): the
 * demo, the soak, the benchmarks and the integration tests all go through here, so what they measure is how the
 * README says to run it.
 *
 * The heap cap: V8 grows its heap lazily up to a limit derived from the machine's memory (GiBs here), so a
 * component at full speed holds a few hundred MiB of garbage between collections. Its live data is small and
 * bounded (the cdc's buffer, the aggregator's TTL record, the alerting window), so capping the old space keeps
 * RSS near the live set at the same throughput (bench: aggregator peak 397 → 236 MiB, cdc 317 → 145 MiB).
 * `NODE_OPTIONS=--max-old-space-size=…` set by the operator wins.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// From the TypeScript sources (tests, demo, soak, benchmarks under tsx/vitest) children run the sources too, through
// scripts/riskmon-dev.mjs, so an old dist/ never stands in for the code under test; from the compiled build
// (dist/lib/launch.js) they run the compiled `riskmon` bin.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), FROM_SOURCE ? '..' : '../..');
const RISKMON_BIN = path.join(REPO_ROOT, 'scripts', FROM_SOURCE ? 'riskmon-dev.mjs' : 'riskmon.mjs');

/** Old-space cap (MiB) per command; `all` runs every component in one process. */
const HEAP_MB: Readonly<Record<string, number>> = Object.freeze({ cdc: 256, aggregate: 256, alerting: 256, api: 256, replay: 256, all: 768 });

function heapArgs(cmd: string | undefined, env: NodeJS.ProcessEnv = process.env): string[] {
  const mb = cmd === undefined ? undefined : HEAP_MB[cmd];
  if (mb === undefined || /--max-old-space-size/.test(env.NODE_OPTIONS ?? '')) return [];
  return [`--max-old-space-size=${mb}`];
}

/** The argv after process.execPath for `riskmon <args>`; `nodeArgs` (e.g. profiling flags) go before the script. */
export function riskmonArgv(args: string[], nodeArgs: string[] = [], env: NodeJS.ProcessEnv = process.env): string[] {
  return [...heapArgs(args[0], env), ...nodeArgs, RISKMON_BIN, ...args];
}

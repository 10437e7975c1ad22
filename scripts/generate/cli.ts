/**
 * `riskmon generate merchants | backfill | live` — the reference workload (see docs/benchmarks.md "Reference workload").
 * Exit codes: 0 done, 1 failed, 2 bad input (the message names the flag and the expected form).
 */
import { commonSpec, connections, readConfig } from '../../lib/config.ts';
import { DAY, iso } from '../../lib/time.ts';
import { parseFlags, required, UsageError, type FlagSpec, type ParsedFlags } from '../../lib/args.ts';
import { backfill, DEFAULT_MERCHANTS, DEFAULT_TX_PER_DAY } from './backfill.ts';
import { live } from './live.ts';
import { ensureMerchants, SchemaMissingError } from './merchants.ts';
import { parseScenario, SCENARIO_FORM, type MerchantAlias, type Scenario } from './scenarios.ts';
import { pickMerchants } from './workload.ts';

const common: Record<string, FlagSpec> = {
  merchants: { kind: 'int', min: 1, max: 10_000_000, help: `a merchant count, default ${DEFAULT_MERCHANTS}` },
  seed: { kind: 'int', min: 0, max: 4_294_967_295, help: 'a whole number from 0 to 2^32-1, default 1' },
};
const SPECS: Record<string, Record<string, FlagSpec>> = {
  merchants: { merchants: common.merchants },
  backfill: {
    ...common,
    days: { kind: 'num', min: 0.001, max: 400, help: 'a number of days such as 8' },
    end: { kind: 'time', help: 'an ISO-8601 time with a zone such as 2026-11-21T15:00:00Z (default now)' },
    'tx-per-day': { kind: 'int', min: 1, max: 1_000_000_000, help: `payments per day, default ${DEFAULT_TX_PER_DAY}` },
    connections: { kind: 'int', min: 1, max: 16, help: 'parallel COPY connections, default 2' },
    scenario: { kind: 'list', help: SCENARIO_FORM },
    'week-shapes': { kind: 'int', min: 0, max: 1, help: '1 for weekday shapes by category and Korean public holidays, 0 (default) for flat weeks' },
    'settlement-days': { kind: 'int', min: 0, max: 30, help: 'N: payouts pay local day D at the start of day D+N, default 2; 0 writes no payouts' },
  },
  live: {
    ...common,
    tps: { kind: 'num', min: 0.01, max: 1_000_000, help: 'transactions per second such as 5000' },
    duration: { kind: 'num', min: 0.1, max: 31_536_000, help: 'seconds (default: until Ctrl-C)' },
    connections: { kind: 'int', min: 1, max: 256, help: 'database connections, default 32' },
    'late-share': { kind: 'num', min: 0, max: 1, help: 'share of rows with a transaction time up to 2 min in the past, default 0.02' },
    scenario: { kind: 'list', help: SCENARIO_FORM },
    'week-shapes': { kind: 'int', min: 0, max: 1, help: '1 for weekday shapes by category and Korean public holidays, 0 (default) for flat weeks' },
    'settlement-days': { kind: 'int', min: 0, max: 30, help: 'N: payouts pay local day D at the start of day D+N, default 2; 0 writes no payouts' },
  },
};

const HELP = `usage:
  riskmon generate merchants [--merchants N]
  riskmon generate backfill --days N [--end ISO] [--seed S] [--merchants N] [--tx-per-day N] [--connections C]
                            [--scenario name:merchant:start[:param] …] [--week-shapes 1] [--settlement-days N]
  riskmon generate live --tps N [--duration S] [--connections C] [--seed S] [--merchants N] [--late-share X]
                        [--scenario name:merchant:start[:param] …] [--week-shapes 1] [--settlement-days N]

scenarios: ${SCENARIO_FORM}
  cancel_surge (param: cancel-rate multiplier, default 6), volume_drop (param: share kept, default 0.3),
  full_stop, bust_out (param: cancels of earlier payments per transaction, default 10; no more sales),
  midnight (nothing injected; a backfill always spans local midnights)
payouts: each local day D that ends is paid at the start of day D+N (--settlement-days, default 2) to every
  merchant whose net since its last payout is positive
  e.g. --scenario cancel_surge:hot:+10m --scenario volume_drop:big:2026-11-21T03:00:00Z:0.3
environment: PG_URL (the source database), RISKMON_TZ (zone of the daily curve, default Asia/Seoul)
`;

const out = (line: string) => process.stdout.write(`${line}\n`);

export async function main(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (!sub || sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(HELP);
    return sub ? 0 : 2;
  }
  try {
    const spec = SPECS[sub];
    if (!spec) throw new UsageError(`unknown subcommand "${sub}"; expected merchants, backfill or live`);
    if (rest.includes('--help') || rest.includes('-h')) { process.stdout.write(HELP); return 0; }
    const flags = parseFlags(sub, rest, spec);
    const cfg = readConfig({ ...connections('pgUrl'), tz: commonSpec.tz });
    if (sub === 'merchants') return await runMerchants(cfg.pgUrl, flags);
    if (sub === 'backfill') return await runBackfill(cfg.pgUrl, cfg.tz, flags);
    return await runLive(cfg.pgUrl, flags);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`riskmon generate${SPECS[sub] ? ` ${sub}` : ''}: ${err.message}\n\n${HELP}`);
      return 2;
    }
    if (err instanceof SchemaMissingError) {
      process.stderr.write(`riskmon generate ${sub}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

async function runMerchants(pgUrl: string, flags: ParsedFlags): Promise<number> {
  const n = (flags.merchants as number | undefined) ?? DEFAULT_MERCHANTS;
  const added = await ensureMerchants(pgUrl, n);
  out(`merchants 1..${n}: ${added} added, ${n - added} already there`);
  return 0;
}

function scenariosOf(flags: ParsedFlags, now: number, merchants: number, seed: number, txPerDay: number): Scenario[] {
  let picked: ReturnType<typeof pickMerchants> | null = null;
  const resolveAlias = (a: MerchantAlias) => {
    picked ??= pickMerchants(seed, merchants, txPerDay);
    return { normal: picked.normal, hot: picked.hot, big: picked.bigVolume, big2: picked.bigVolumeStop }[a];
  };
  const list = ((flags.scenario as string[] | undefined) ?? []).map((t) => parseScenario(t, { now, merchants, resolveAlias }));
  for (const s of list) {
    out(s.name === 'midnight'
      ? 'scenario midnight: nothing injected; the run crosses local midnight when its window does'
      : `scenario ${s.name}: merchant ${s.merchant} from ${iso(s.startMs)}${s.name === 'full_stop' ? '' : s.name === 'cancel_surge' ? ` (cancel rate ×${s.factor})` : s.name === 'bust_out' ? ` (no sales, ${s.factor} cancels of earlier payments per transaction)` : ` (${s.factor * 100}% of volume kept)`}`);
  }
  return list;
}

async function runBackfill(pgUrl: string, tz: string, flags: ParsedFlags): Promise<number> {
  const days = required<number>('backfill', flags, 'days', 'a number of days such as 8');
  const end = (flags.end as number | undefined) ?? Date.now();
  const merchants = (flags.merchants as number | undefined) ?? DEFAULT_MERCHANTS;
  const seed = (flags.seed as number | undefined) ?? 1;
  const txPerDay = (flags['tx-per-day'] as number | undefined) ?? DEFAULT_TX_PER_DAY;
  const scenarios = scenariosOf(flags, end, merchants, seed, txPerDay);
  out(`backfill ${days} day(s) ${iso(end - days * DAY)} .. ${iso(end)} (${tz}), ${txPerDay} payments/day over ${merchants} merchants, seed ${seed}`);
  const st = await backfill(pgUrl, {
    days, end, seed, merchants, txPerDay, scenarios, tz, weekShapes: flags['week-shapes'] === 1,
    settlementDays: flags['settlement-days'] as number | undefined,
    connections: flags.connections as number | undefined,
    onProgress: (p) => out(`  ${(p.doneShare * 100).toFixed(0).padStart(3)}%  ${p.payments} payments, ${p.cancels} cancels, ${Math.round(p.rowsPerSecond)} rows/s`),
  });
  out(`done: ${st.payments} payments, ${st.cancels} cancels (${st.partialCancels} partial), ${st.payouts} payouts in ${st.seconds.toFixed(1)} s = ${Math.round(st.rowsPerSecond)} rows/s`);
  return 0;
}

async function runLive(pgUrl: string, flags: ParsedFlags): Promise<number> {
  const tps = required<number>('live', flags, 'tps', 'transactions per second such as 5000');
  const merchants = (flags.merchants as number | undefined) ?? DEFAULT_MERCHANTS;
  const seed = (flags.seed as number | undefined) ?? 1;
  const scenarios = scenariosOf(flags, Date.now(), merchants, seed, DEFAULT_TX_PER_DAY);
  const duration = flags.duration as number | undefined;
  out(`live ${tps} TPS${duration ? ` for ${duration} s` : ' until Ctrl-C'} over ${merchants} merchants, seed ${seed}`);
  const run = await live(pgUrl, {
    tps, durationS: duration, seed, merchants, scenarios, weekShapes: flags['week-shapes'] === 1,
    settlementDays: flags['settlement-days'] as number | undefined,
    connections: flags.connections as number | undefined,
    lateShare: flags['late-share'] as number | undefined,
    onReport: (r) => out(`  ${r.seconds.toFixed(0).padStart(5)} s  ${Math.round(r.lastTps)} TPS now, ${Math.round(r.achievedTps)} average  (${r.payments} payments, ${r.cancels} cancels, ${r.late} late, ${r.errors} errors, ${r.missed} missed)`),
    onError: (err) => process.stderr.write(`first failed INSERT: ${(err as Error).message}\n`),
  });
  const stop = () => { void run.stop(); };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const st = await run.done;
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  out(`done: ${st.payments} payments + ${st.cancels} cancels in ${st.seconds.toFixed(1)} s = ${Math.round(st.achievedTps)} TPS achieved of ${tps} requested`
    + `${st.achievedTps < tps * 0.95 ? ' (the database could not take the requested rate)' : ''}; ${st.late} late, ${st.payouts} payouts, ${st.errors} errors`);
  return st.errors > 0 && st.payments + st.cancels === 0 ? 1 : 0;
}

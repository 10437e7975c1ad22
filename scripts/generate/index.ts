/** The reference workload generator's programmatic API, for tests, the demo and the benchmarks. */
export { backfill, DEFAULT_MERCHANTS, DEFAULT_TX_PER_DAY, type BackfillOptions, type BackfillStats, type BackfillProgress } from './backfill.ts';
export { live, type LiveOptions, type LiveRun, type LiveStats, type LiveReport } from './live.ts';
export { ensureMerchants, SchemaMissingError } from './merchants.ts';
export { pickMerchants, Workload, BIG_VOLUME_KRW, type ScenarioMerchants } from './workload.ts';
export { parseScenario, ScenarioSet, SCENARIO_NAMES, type Scenario, type ScenarioName } from './scenarios.ts';
export * as distribution from './distribution.ts';
export { Rng, AliasTable } from './random.ts';
export { merchantProfile, type MerchantProfile } from './distribution.ts';
export { UsageError } from '../../lib/args.ts';
export { DEFAULT_SETTLEMENT_DAYS, payoutId, settlementOf, writeDayPayouts } from './payouts.ts';

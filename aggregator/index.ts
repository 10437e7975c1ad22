/** `riskmon aggregate`: validates the configuration and builds the aggregator service. */
import { processClock } from '../lib/clock.ts';
import { readConfig } from '../lib/config.ts';
import { componentLogger } from '../lib/logger.ts';
import type { Service } from '../lib/service.ts';
import { aggregatorSpec } from './config.ts';
import { AggregatorService } from './consumer.ts';

// For the CLI, the configuration table and the benchmarks.
export { aggregatorSpec, backfillSpec } from './config.ts';
export { AggregatorService } from './consumer.ts';
export { main as replayCommand } from './replay-cli.ts';
// For backtests of minutes the minute tier no longer holds (alerting).
export { TopicMinutes, TopicTooShortError, type TopicMinutesOptions } from './topic-minutes.ts';

export async function start(env: NodeJS.ProcessEnv = process.env): Promise<Service[]> {
  const cfg = readConfig(aggregatorSpec, env);
  const log = componentLogger('aggregator');
  return [new AggregatorService(cfg, log, { now: processClock(cfg.clock, log) })];
}
// The history backfill: the cdc's first start and `riskmon backfill`.
export { BackfillLockedError, runBackfill, waitForAggregators, type BackfillConfig, type BackfillReport } from './backfill.ts';
export { main as backfillCommand } from './backfill-cli.ts';

/** `riskmon aggregate`: validates the configuration and builds the aggregator service. */
import { readConfig } from '../lib/config.ts';
import { componentLogger } from '../lib/logger.ts';
import type { Service } from '../lib/service.ts';
import { aggregatorSpec } from './config.ts';
import { AggregatorService } from './consumer.ts';

export async function start(env: NodeJS.ProcessEnv = process.env): Promise<Service[]> {
  const cfg = readConfig(aggregatorSpec, env);
  return [new AggregatorService(cfg, componentLogger('aggregator'))];
}

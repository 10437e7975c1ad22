/** What a test, soak or benchmark run owns on shared services, named after the run, and removing it afterwards. */
import { pipelined, scanKeys, type RedisClient } from '../../lib/redis.ts';

/** One name for the run's topic, dead-letter topic, consumer group, replication slot and Redis key prefix. */
export function runEnv(name: string): NodeJS.ProcessEnv {
  return { RISKMON_TOPIC: name, RISKMON_DLQ_TOPIC: `${name}.dlq`, RISKMON_GROUP: name, RISKMON_SLOT: name, RISKMON_REDIS_PREFIX: name };
}

/** Removes every key matching `pattern` (e.g. `<prefix>:*`) from a shared Redis (every master of a cluster), in SCAN batches. */
export async function dropKeys(redis: RedisClient, pattern: string): Promise<void> {
  await scanKeys(redis, pattern, async (keys) => { await pipelined(redis, keys.map((k) => ['unlink', k])); });
}

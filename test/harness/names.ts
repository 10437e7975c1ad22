/** What a test, soak or benchmark run owns on shared services, named after the run, and removing it afterwards. */
import type { Redis } from 'ioredis';

/** One name for the run's topic, dead-letter topic, consumer group, replication slot and Redis key prefix. */
export function runEnv(name: string): NodeJS.ProcessEnv {
  return { RISKMON_TOPIC: name, RISKMON_DLQ_TOPIC: `${name}.dlq`, RISKMON_GROUP: name, RISKMON_SLOT: name, RISKMON_REDIS_PREFIX: name };
}

/** Removes every key matching `pattern` (e.g. `<prefix>:*`) from a shared Redis, in SCAN batches. */
export async function dropKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 5000);
    cursor = next;
    if (keys.length) await redis.unlink(...keys);
  } while (cursor !== '0');
}

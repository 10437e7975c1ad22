/** URLs of our own services and of those taken from the environment. */
import pg from 'pg';
import { ServiceName, StackEnv, StackError, StackState } from './common.ts';

export function ownUrl(state: StackState, key: keyof StackEnv): string | undefined {
  const s = state.services;
  switch (key) {
    case 'PG_URL':
      return s.pg && `postgres://postgres@127.0.0.1:${s.pg.port}/riskmon_source`;
    case 'RISK_PG_URL':
      return s.pg && `postgres://postgres@127.0.0.1:${s.pg.port}/riskmon_risk`;
    case 'KAFKA_BROKERS':
      return s.kafka && `127.0.0.1:${s.kafka.port}`;
    case 'REDIS_URL':
      return s.redis && `redis://127.0.0.1:${s.redis.port}`;
  }
}

/** URLs in env that point elsewhere than this stack (a shell that ran `eval $(npm run stack env)` is not "external"). */
export function externalUrls(state: StackState, env: NodeJS.ProcessEnv): Partial<StackEnv> {
  const out: Partial<StackEnv> = {};
  for (const key of ['PG_URL', 'RISK_PG_URL', 'KAFKA_BROKERS', 'REDIS_URL'] as const) {
    const v = env[key];
    if (v && v !== ownUrl(state, key)) out[key] = v;
  }
  // The risk store follows the source server unless named: an external source without RISK_PG_URL gets a
  // riskmon_risk database on that same server.
  if (out.PG_URL && !out.RISK_PG_URL) out.RISK_PG_URL = withDatabase(out.PG_URL, 'riskmon_risk');
  return out;
}

export const ENV_KEY: Record<ServiceName, keyof StackEnv> = { pg: 'PG_URL', kafka: 'KAFKA_BROKERS', redis: 'REDIS_URL' };

export function isExternal(state: StackState, name: ServiceName): boolean {
  return state.external[ENV_KEY[name]] !== undefined;
}

export function externalUrl(state: StackState, name: ServiceName): string | undefined {
  return state.external[ENV_KEY[name]];
}

export function urls(state: StackState): StackEnv {
  const get = (key: keyof StackEnv): string => {
    const v = state.external[key] ?? ownUrl(state, key);
    if (!v) throw new StackError(`stack has no value for ${key}`);
    return v;
  };
  return { PG_URL: get('PG_URL'), RISK_PG_URL: get('RISK_PG_URL'), KAFKA_BROKERS: get('KAFKA_BROKERS'), REDIS_URL: get('REDIS_URL') };
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

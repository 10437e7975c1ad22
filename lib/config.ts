/**
 * Configuration is data: every option names its environment variable, its type (a parser), its default and a
 * description. `readConfig` reads a spec once, collects every problem, and throws one ConfigError naming each bad
 * variable and what it expects; the result is frozen. Components keep their own spec beside their code
 * (`cdc/config.ts`, …) and compose the shared one below.
 */
import { readFileSync } from 'node:fs';
import { clockStartOption } from './clock.ts';
import { referenceMapping, validateMapping } from './mapping.ts';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

export interface Option<T> {
  env: string;
  description: string;
  /** Used when the variable is unset or empty. No default and no value: the option is required. */
  default?: T;
  parse: (raw: string) => T;
  /** Shown in errors, e.g. "an integer from 1 to 1000". */
  expects: string;
  /**
   * A password or a URL that may carry one: it may be given as `<env>_FILE` (a path whose content is the value,
   * so it stays out of process listings and compose files), and errors never show the value.
   */
  secret?: boolean;
}

type OptionValue<O> = O extends Option<infer T> ? T : never;
export type ConfigOf<S extends Record<string, Option<unknown>>> = Readonly<{ [K in keyof S]: OptionValue<S[K]> }>;

export function readConfig<S extends Record<string, Option<unknown>>>(
  spec: S,
  env: NodeJS.ProcessEnv = process.env,
): ConfigOf<S> {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, opt] of Object.entries(spec)) {
    let raw = env[opt.env];
    const file = opt.secret ? env[`${opt.env}_FILE`] : undefined;
    if (file !== undefined && file.trim() !== '') {
      if (raw !== undefined && raw.trim() !== '') {
        problems.push(`${opt.env} and ${opt.env}_FILE are both set: set one of them`);
        continue;
      }
      try {
        raw = readFileSync(file.trim(), 'utf8').replace(/\r?\n$/, '');
      } catch (err) {
        problems.push(`${opt.env}_FILE=${JSON.stringify(file)} cannot be read: ${(err as Error).message} (expects a file holding ${opt.env})`);
        continue;
      }
    }
    if (raw === undefined || raw.trim() === '') {
      if (opt.default === undefined) problems.push(`${opt.env} is required: ${opt.description} (expects ${opt.expects})`);
      else out[key] = opt.default;
      continue;
    }
    try {
      out[key] = opt.parse(raw.trim());
    } catch (err) {
      const shown = opt.secret ? '' : `=${JSON.stringify(raw)}`;
      problems.push(`${opt.env}${shown} is invalid: ${(err as Error).message} (expects ${opt.expects})`);
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return Object.freeze(out) as ConfigOf<S>;
}

// ---- option builders -------------------------------------------------------------------------------------------

export function str(env: string, description: string, def?: string): Option<string> {
  return { env, description, default: def, expects: 'a string', parse: (s) => s };
}

/** Optional string: unset gives '' (never required). */
export function optStr(env: string, description: string): Option<string> {
  return { env, description, default: '', expects: 'a string', parse: (s) => s };
}

export function int(env: string, description: string, def: number | undefined, min: number, max: number): Option<number> {
  return {
    env, description, default: def, expects: `an integer from ${min} to ${max}`,
    parse: (s) => {
      if (!/^-?\d+$/.test(s)) throw new Error('not an integer');
      const n = Number(s);
      if (n < min || n > max) throw new Error('out of range');
      return n;
    },
  };
}

export function num(env: string, description: string, def: number | undefined, min: number, max: number): Option<number> {
  return {
    env, description, default: def, expects: `a number from ${min} to ${max}`,
    parse: (s) => {
      const n = Number(s);
      if (!Number.isFinite(n)) throw new Error('not a number');
      if (n < min || n > max) throw new Error('out of range');
      return n;
    },
  };
}

export function bool(env: string, description: string, def: boolean): Option<boolean> {
  return {
    env, description, default: def, expects: 'true or false',
    parse: (s) => {
      if (/^(1|true|yes|on)$/i.test(s)) return true;
      if (/^(0|false|no|off)$/i.test(s)) return false;
      throw new Error('not a boolean');
    },
  };
}

export function url(env: string, description: string, protocols: string[], def?: string): Option<string> {
  return {
    env, description, default: def, expects: `a URL (${protocols.join(', ')})`,
    parse: (s) => {
      let u: URL;
      try { u = new URL(s); } catch { throw new Error('not a URL'); }
      if (!protocols.includes(u.protocol.replace(/:$/, ''))) throw new Error(`protocol ${u.protocol} not allowed`);
      return s;
    },
  };
}

export function oneOf<T extends string>(env: string, description: string, values: readonly T[], def: T): Option<T> {
  return {
    env, description, default: def, expects: `one of ${values.join(', ')}`,
    parse: (s) => {
      if (!(values as readonly string[]).includes(s)) throw new Error('unknown value');
      return s as T;
    },
  };
}

export function timeZone(env: string, description: string, def: string): Option<string> {
  return {
    env, description, default: def, expects: 'an IANA time zone such as Asia/Seoul',
    parse: (s) => {
      try { new Intl.DateTimeFormat('en-US', { timeZone: s }); } catch { throw new Error('unknown time zone'); }
      return s;
    },
  };
}

/** Marks an option secret (see Option.secret): `X_FILE` may hold its value, errors never show it. */
export function secret<T>(opt: Option<T>): Option<T> {
  return { ...opt, secret: true };
}

/** A path to a readable file (a CA certificate, …); '' when unset. The content is read where it is used. */
export function filePath(env: string, description: string): Option<string> {
  return {
    env, description, default: '', expects: 'the path of a readable file',
    parse: (s) => {
      try { readFileSync(s); } catch (e) { throw new Error(`cannot read ${s}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`); }
      return s;
    },
  };
}

/**
 * Redis node URLs: one (standalone) or a comma-separated list (cluster seed nodes, or the sentinels), all
 * redis:// or all rediss:// (TLS). How many a mode needs is checked where the client is built (lib/redis.ts).
 */
export function redisUrls(env: string, description: string): Option<string[]> {
  return {
    env, description, expects: 'redis://[user:password@]host:port (rediss:// for TLS), comma-separated for cluster and sentinel',
    parse: (s) => {
      const list = s.split(',').map((x) => x.trim()).filter(Boolean);
      if (!list.length) throw new Error('empty');
      const protocols = new Set<string>();
      for (const [i, one] of list.entries()) {
        let u: URL;
        try { u = new URL(one); } catch { throw new Error(`entry ${i + 1} is not a URL`); }
        if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new Error(`entry ${i + 1}: protocol ${u.protocol} not allowed`);
        if (!u.hostname) throw new Error(`entry ${i + 1} has no host`);
        protocols.add(u.protocol);
      }
      if (protocols.size > 1) throw new Error('mixes redis:// and rediss://: TLS is on for every node or for none');
      return list;
    },
  };
}

/** Kafka brokers: `host:port,host:port`. */
export function brokers(env: string, description: string): Option<string[]> {
  return {
    env, description, expects: 'host:port[,host:port…]',
    parse: (s) => {
      const list = s.split(',').map((x) => x.trim()).filter(Boolean);
      for (const b of list) if (!/^[\w.-]+:\d{1,5}$/.test(b)) throw new Error(`"${b}" is not host:port`);
      if (!list.length) throw new Error('empty');
      return list;
    },
  };
}

export const ROLES = ['viewer', 'analyst', 'admin'] as const;
export type Role = (typeof ROLES)[number];
/** `name` is the actor recorded for what the key does (the audit trail, triage); keys without one get none. */
export interface ApiKey { key: string; role: Role; name?: string }

/** Shortest accepted API key: 24 characters (at least 128 bits when random base64). */
export const MIN_KEY_LENGTH = 24;

const isRole = (s: string): s is Role => (ROLES as readonly string[]).includes(s);

/**
 * `key:role` or `key:role:name`, comma-separated, roles viewer/analyst/admin. A key may itself contain ":" (the
 * role is found from the end); a name may not contain "," or ":".
 */
export function apiKeys(env: string, description: string): Option<ApiKey[]> {
  return {
    env, description, default: [], expects: 'key:role[:name][,key:role[:name]…] with role viewer, analyst or admin',
    parse: (s) => {
      const keys = s.split(',').map((entry) => entry.trim()).filter(Boolean).map((entry): ApiKey => {
        const parts = entry.split(':');
        const named = parts.length >= 3 && isRole(parts[parts.length - 2]) && !isRole(parts[parts.length - 1]);
        const role = named ? parts[parts.length - 2] : parts[parts.length - 1];
        const key = parts.slice(0, named ? -2 : -1).join(':');
        const name = named ? parts[parts.length - 1].trim() : undefined;
        if (parts.length < 2 || key.length < MIN_KEY_LENGTH) throw new Error(`"${entry.slice(0, 4)}…" needs a key of at least ${MIN_KEY_LENGTH} characters before ":role" (generate one with: openssl rand -base64 32)`);
        if (!isRole(role)) throw new Error(`role "${role}" is not viewer, analyst or admin`);
        if (name !== undefined && !/^[\p{L}\p{N} ._@-]{1,64}$/u.test(name)) throw new Error(`name "${name.slice(0, 70)}" of key "${key.slice(0, 4)}…" must be 1-64 letters, digits, spaces or . _ @ -`);
        return name ? { key, role, name } : { key, role };
      });
      const seen = new Set<string>();
      for (const k of keys) {
        if (seen.has(k.key)) throw new Error(`key "${k.key.slice(0, 4)}…" is listed twice`);
        seen.add(k.key);
      }
      return keys;
    },
  };
}

/** JSON given inline or as `@path/to/file.json`. */
export function json<T>(env: string, description: string, def: T, validate: (v: unknown) => T): Option<T> {
  return {
    env, description, default: def, expects: 'JSON, inline or as @path/to/file.json',
    parse: (s) => {
      let text = s;
      if (s.startsWith('@')) {
        try { text = readFileSync(s.slice(1), 'utf8'); } catch (e) { throw new Error(`cannot read ${s.slice(1)}: ${(e as Error).message}`); }
      }
      let v: unknown;
      try { v = JSON.parse(text); } catch (e) { throw new Error(`not valid JSON: ${(e as Error).message}`); }
      return validate(v);
    },
  };
}


// ---- options shared by several components ----------------------------------------------------------------------

export const REDIS_MODES = ['standalone', 'cluster', 'sentinel'] as const;
export const KAFKA_SASL_MECHANISMS = ['none', 'plain', 'scram-sha-256', 'scram-sha-512'] as const;

export const connectionSpec = {
  pgUrl: secret(url('PG_URL', 'the source PostgreSQL (wal_level=logical), e.g. postgres://user@host:5432/db?sslmode=verify-full', ['postgres', 'postgresql'])),
  riskPgUrl: secret(url('RISK_PG_URL', 'the risk store PostgreSQL database (alerts, history)', ['postgres', 'postgresql'])),
  kafkaBrokers: brokers('KAFKA_BROKERS', 'Kafka bootstrap brokers (list them all)'),
  kafkaSsl: bool('KAFKA_SSL', 'connect to Kafka over TLS', false),
  kafkaCaFile: filePath('KAFKA_SSL_CA_FILE', 'PEM file of the CA that signed the brokers\' certificates (default: the system CAs)'),
  kafkaSaslMechanism: oneOf('KAFKA_SASL_MECHANISM', 'Kafka SASL mechanism', KAFKA_SASL_MECHANISMS, 'none'),
  kafkaSaslUsername: optStr('KAFKA_SASL_USERNAME', 'Kafka SASL user'),
  kafkaSaslPassword: secret(optStr('KAFKA_SASL_PASSWORD', 'Kafka SASL password')),
  topicReplication: int('RISKMON_TOPIC_REPLICATION', 'replication factor of the topics riskmon creates (0 = the brokers\' default.replication.factor)', 0, 0, 16),
  redisUrl: secret(redisUrls('REDIS_URL', 'Redis for the buckets: one URL, or the seed nodes (cluster) or sentinels (sentinel), comma-separated')),
  redisMode: oneOf('RISKMON_REDIS_MODE', 'how REDIS_URL is read: one server, a Redis Cluster, or a Sentinel set', REDIS_MODES, 'standalone'),
  redisSentinelName: str('RISKMON_REDIS_SENTINEL_NAME', 'name of the master set the sentinels watch (sentinel mode)', 'mymaster'),
  redisCaFile: filePath('RISKMON_REDIS_CA_FILE', 'PEM file of the CA that signed the Redis servers\' certificates (rediss://; default: the system CAs)'),
  redisUsername: optStr('RISKMON_REDIS_USERNAME', 'Redis ACL user (overrides the user in REDIS_URL)'),
  redisPassword: secret(optStr('RISKMON_REDIS_PASSWORD', 'Redis password of that user (overrides the one in REDIS_URL)')),
};

/** Options that come with `kafkaBrokers` / `redisUrl` when a component picks them (security, modes). */
const KAFKA_OPTIONS = ['kafkaSsl', 'kafkaCaFile', 'kafkaSaslMechanism', 'kafkaSaslUsername', 'kafkaSaslPassword', 'topicReplication'] as const;
const REDIS_OPTIONS = ['redisMode', 'redisSentinelName', 'redisCaFile', 'redisUsername', 'redisPassword'] as const;
type Related<K> = (K extends 'kafkaBrokers' ? typeof KAFKA_OPTIONS[number] : never) | (K extends 'redisUrl' ? typeof REDIS_OPTIONS[number] : never);

/** The approval/cancel tables and columns (the aggregator's buckets; the alerting's rebuilds from the topic). */
export const mappingOption = json('RISKMON_MAPPING', 'approval/cancel tables and columns (docs/configuration.md "Your own schema")', referenceMapping, validateMapping);

/** The D+N settlement schedule used when the mapping has no payouts table (lib/exposure.ts). */
export const settlementDaysOption = int('RISKMON_SETTLEMENT_DAYS', 'settlement schedule when RISKMON_MAPPING maps no payouts table: local day D is paid at the start of local day D+N (0 = none: without payouts every sale counts as unsettled)', 0, 0, 60);

export const commonSpec = {
  tz: timeZone('RISKMON_TZ', 'time zone that defines a day', 'Asia/Seoul'),
  topic: str('RISKMON_TOPIC', 'Kafka topic of change events', 'riskmon.changes'),
  partitions: int('RISKMON_PARTITIONS', 'partitions of the change topic (fixed once the topic exists)', 12, 1, 1024),
  hotShards: int('RISKMON_HOT_SHARDS', 'keys (merchant#shard) per hot merchant; changing it needs a rebuild', 8, 1, 64),
  redisPrefix: str('RISKMON_REDIS_PREFIX', 'prefix of every Redis key riskmon writes', 'rm'),
  slot: str('RISKMON_SLOT', 'logical replication slot the cdc reads', 'riskmon'),
  publication: str('RISKMON_PUBLICATION', 'publication of the approval and cancel tables', 'riskmon_pub'),
  group: str('RISKMON_GROUP', 'Kafka consumer group the aggregators commit their offsets to (lag monitoring only: Redis holds where each partition continues)', 'riskmon-aggregator'),
  dlqTopic: str('RISKMON_DLQ_TOPIC', 'dead-letter topic for rows and events riskmon cannot read', 'riskmon.changes.dlq'),
  allowedLatenessMs: int('RISKMON_ALLOWED_LATENESS_MS', 'how long after a minute ends (by the watermark) it stays open', 5000, 0, 600_000),
  clock: clockStartOption,
  logLevel: oneOf('RISKMON_LOG_LEVEL', 'log level', ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const, 'info'),
};

/**
 * /metrics of a component running on its own (the api serves /metrics on its HTTP port). In a container the
 * address must be 0.0.0.0 for Prometheus (compose.yaml's monitoring profile) to reach it.
 */
export const metricsSpec = {
  metricsPort: int('RISKMON_METRICS_PORT', 'serve /metrics on this port when cdc, aggregate or alerting runs alone (0 = off)', 0, 0, 65535),
  metricsHost: str('RISKMON_METRICS_HOST', 'address the /metrics port listens on (0.0.0.0 in a container)', '127.0.0.1'),
};

/**
 * Pick the subset of `connectionSpec` a component needs, so `riskmon generate` does not ask for Kafka.
 */
export function connections<K extends keyof typeof connectionSpec>(...keys: K[]): Pick<typeof connectionSpec, K | Related<K>> {
  const out: Record<string, Option<unknown>> = {};
  for (const k of keys) {
    out[k] = connectionSpec[k];
    const related: readonly string[] = k === 'kafkaBrokers' ? KAFKA_OPTIONS : k === 'redisUrl' ? REDIS_OPTIONS : [];
    for (const r of related) out[r] = connectionSpec[r as keyof typeof connectionSpec];
  }
  return out as Pick<typeof connectionSpec, K | Related<K>>;
}

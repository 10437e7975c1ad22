/**
 * The one place a kafkajs client is built. Every component, tool and test calls `createKafka` with the Kafka part
 * of its configuration, so the client options that must agree everywhere (brokers today; TLS and SASL when the
 * deployment needs them) are read in one function and cannot drift between sites.
 *
 * Security (docs/deployment.md): KAFKA_SSL with KAFKA_SSL_CA_FILE (a private CA; default the
 * system's), KAFKA_SASL_MECHANISM plain | scram-sha-256 | scram-sha-512 with KAFKA_SASL_USERNAME and
 * KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE). The cdc's own partition writer and topic reader run on
 * connections of this client, so they inherit both.
 */
import { readFileSync } from 'node:fs';
import { Kafka, logLevel, type SASLOptions } from 'kafkajs';
import { ConfigError, type KAFKA_SASL_MECHANISMS } from '../config.ts';
import './request-queue-fix.ts';
import type { Logger } from '../logger.ts';

/** The Kafka part of a component's configuration (`connections('kafkaBrokers')` in lib/config.ts). */
export interface KafkaConfig {
  readonly kafkaBrokers: readonly string[];
  readonly kafkaSsl?: boolean;
  readonly kafkaCaFile?: string;
  readonly kafkaSaslMechanism?: typeof KAFKA_SASL_MECHANISMS[number];
  readonly kafkaSaslUsername?: string;
  readonly kafkaSaslPassword?: string;
}

export interface KafkaClientOptions {
  /** Shown in the broker's logs and metrics; one per component or tool. */
  clientId: string;
  /**
   * Where kafkajs's own log lines go. Without it the client is silent (tools, tests, short-lived admin calls);
   * with it, warnings and errors reach pino — as warnings, because kafkajs logs routine retries (metadata
   * refresh, leader moves) as errors.
   */
  log?: Logger;
  /** kafkajs retries per request (its default 5 when unset): status probes use 1 so a dead broker answers fast. */
  retries?: number;
  connectionTimeoutMs?: number;
}

/** Brokers from a `host:port,host:port` string (the KAFKA_BROKERS form), for tools that hold the raw value. */
export function kafkaConfigOf(brokers: string): KafkaConfig {
  return { kafkaBrokers: brokers.split(',').map((b) => b.trim()).filter(Boolean) };
}

/** The TLS and SASL options of kafkajs for `cfg` (pure but for reading the CA file). */
export function kafkaSecurity(cfg: KafkaConfig): { ssl?: { ca: Buffer[] } | true; sasl?: SASLOptions } {
  const out: { ssl?: { ca: Buffer[] } | true; sasl?: SASLOptions } = {};
  if (cfg.kafkaSsl) out.ssl = cfg.kafkaCaFile ? { ca: [readFileSync(cfg.kafkaCaFile)] } : true;
  else if (cfg.kafkaCaFile) throw new ConfigError(['KAFKA_SSL_CA_FILE is set but KAFKA_SSL is not true: set KAFKA_SSL=true (the brokers speak TLS) or unset the CA file']);
  const mechanism = cfg.kafkaSaslMechanism ?? 'none';
  if (mechanism !== 'none') {
    const missing = [!cfg.kafkaSaslUsername && 'KAFKA_SASL_USERNAME', !cfg.kafkaSaslPassword && 'KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE)'].filter(Boolean);
    if (missing.length) throw new ConfigError([`KAFKA_SASL_MECHANISM=${mechanism} needs ${missing.join(' and ')}`]);
    out.sasl = { mechanism, username: cfg.kafkaSaslUsername!, password: cfg.kafkaSaslPassword! } as SASLOptions;
  }
  return out;
}

/** Kafka refused our credentials or we refused its certificate: a setting is wrong, retrying cannot help. */
export class KafkaSetupError extends Error {
  override name = 'KafkaSetupError';
}

const TLS_TRUST = /SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|CERT_HAS_EXPIRED|ERR_TLS_CERT_ALTNAME_INVALID|CERT_UNTRUSTED|self[- ]signed certificate|unable to verify the first certificate|unable to get local issuer certificate/i;

/** The setting to fix for an error of a Kafka connection, or null when it is an outage or a routine error. */
export function kafkaSetupProblem(err: unknown): string | null {
  for (let e = err as { name?: string; message?: string; code?: string; cause?: unknown; originalError?: unknown } | undefined, depth = 0; e && depth < 5; depth++) {
    const msg = String(e.message ?? '');
    if (e.name === 'KafkaJSSASLAuthenticationError' || /SASL .*authentication failed|Authentication failed during authentication|Invalid username or password/i.test(msg)) {
      return `Kafka refused the SASL credentials (${msg}): check KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE) and KAFKA_SASL_MECHANISM`;
    }
    if (TLS_TRUST.test(`${e.code ?? ''} ${msg}`)) {
      return `the Kafka brokers' TLS certificate is not trusted (${msg}): set KAFKA_SSL_CA_FILE to the CA that signed it`;
    }
    if (/wrong version number|packet length too long|EPROTO/i.test(`${e.code ?? ''} ${msg}`)) {
      return `TLS handshake with Kafka failed (${msg}): KAFKA_SSL=true needs the brokers' TLS listener (check KAFKA_BROKERS and KAFKA_SSL)`;
    }
    e = (e.originalError ?? e.cause) as typeof e;
  }
  return null;
}

/**
 * One connection at start, without retries: wrong credentials or an untrusted certificate fail here with the
 * setting named; brokers that are down are left to the components, which wait for them.
 */
export async function verifyKafka(cfg: KafkaConfig): Promise<void> {
  const admin = createKafka(cfg, { clientId: 'riskmon-verify', retries: 0, connectionTimeoutMs: 5_000 }).admin();
  try {
    await admin.connect();
    await admin.describeCluster();
  } catch (err) {
    const problem = kafkaSetupProblem(err);
    if (problem) throw new KafkaSetupError(problem, { cause: err });
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

export function createKafka(cfg: KafkaConfig, opts: KafkaClientOptions): Kafka {
  const { log } = opts;
  return new Kafka({
    clientId: opts.clientId,
    brokers: [...cfg.kafkaBrokers],
    ...kafkaSecurity(cfg),
    ...(opts.connectionTimeoutMs !== undefined ? { connectionTimeout: opts.connectionTimeoutMs } : {}),
    ...(opts.retries !== undefined ? { retry: { retries: opts.retries } } : {}),
    ...(log
      ? {
        logLevel: logLevel.WARN,
        // the error and the broker are what tell a leader move from a coordinator change from a dead broker
        logCreator: () => ({ level, log: entry }) => (level === logLevel.ERROR ? log.warn : log.info).call(log,
          { kafka: entry.message, ...(entry.error ? { error: String(entry.error) } : {}), ...(entry.broker ? { broker: String(entry.broker) } : {}), ...(entry.groupId ? { groupId: String(entry.groupId) } : {}) }, 'kafkajs'),
      }
      : { logLevel: logLevel.NOTHING }),
  });
}

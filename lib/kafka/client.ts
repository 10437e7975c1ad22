/**
 * The one place a kafkajs client is built. Every component, tool and test calls `createKafka` with the Kafka part
 * of its configuration, so the client options that must agree everywhere (brokers today; TLS and SASL when the
 * deployment needs them) are read in one function and cannot drift between sites.
 */
import { Kafka, logLevel } from 'kafkajs';
import type { Logger } from '../logger.ts';

/** The Kafka part of a component's configuration (`connectionSpec` in lib/config.ts). */
export interface KafkaConfig {
  readonly kafkaBrokers: readonly string[];
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

export function createKafka(cfg: KafkaConfig, opts: KafkaClientOptions): Kafka {
  const { log } = opts;
  return new Kafka({
    clientId: opts.clientId,
    brokers: [...cfg.kafkaBrokers],
    ...(opts.connectionTimeoutMs !== undefined ? { connectionTimeout: opts.connectionTimeoutMs } : {}),
    ...(opts.retries !== undefined ? { retry: { retries: opts.retries } } : {}),
    ...(log
      ? {
        logLevel: logLevel.WARN,
        logCreator: () => ({ level, log: entry }) => (level === logLevel.ERROR ? log.warn : log.info).call(log, { kafka: entry.message }, 'kafkajs'),
      }
      : { logLevel: logLevel.NOTHING }),
  });
}

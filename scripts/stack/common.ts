/** Names, types and constants shared by the stack modules. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { pgBaseDir } from './pg.ts';

export type ServiceName = 'pg' | 'kafka' | 'redis';
export const SERVICES: readonly ServiceName[] = ['pg', 'kafka', 'redis'];

export interface StackEnv {
  PG_URL: string;
  RISK_PG_URL: string;
  KAFKA_BROKERS: string;
  REDIS_URL: string;
}

export interface ServiceState {
  port: number;
  /** KRaft controller listener (Kafka only). */
  controllerPort?: number;
  pid?: number;
}

export interface StackState {
  services: Partial<Record<ServiceName, ServiceState>>;
  /** URLs taken from the environment at `up`; those services are not ours to start or stop. */
  external: Partial<StackEnv>;
  /** Processes (e.g. vitest runs) sharing this stack; the last one to release it stops it. */
  holders: number[];
  /** Where the PostgreSQL cluster lives (see pgBaseDir). */
  pgBase?: string;
}

export interface StackUpOptions {
  /** Data folder; default RISKMON_STACK_DIR or `<repo>/.riskmon/stack`. */
  dir?: string;
  /** Where PG_URL, KAFKA_BROKERS, REDIS_URL, RISK_PG_URL are looked up; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Progress lines; default console.log. */
  log?: (line: string) => void;
  /** Register this pid as a user of the stack; `releaseStack(dir, pid)` stops it when the last user leaves. */
  holder?: number;
  /**
   * Runs once the services answer, still under the stack's lock (so no other run joins meanwhile), with the other
   * live holders; the test setup uses it to clear leftovers when it is alone.
   */
  whileLocked?: (env: StackEnv, otherHolders: number[]) => Promise<void>;
}

export interface ServiceStatus {
  name: ServiceName;
  port?: number;
  pid?: number;
  state: 'up' | 'down' | 'external';
  url?: string;
}

export class StackError extends Error {
  override name = 'StackError';
}

export const KAFKA_VERSION = '3.9.1';
export const PG_MAJOR = '15';
export const REPO_ROOT = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const POM = path.join(REPO_ROOT, 'scripts', 'kafka', 'pom.xml');
export const TIMEOUT_MS: Record<ServiceName, number> = { pg: 60_000, kafka: 120_000, redis: 20_000 };
export const STOP_GRACE_MS: Record<ServiceName, number> = { pg: 30_000, kafka: 30_000, redis: 15_000 };

export function defaultStackDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.RISKMON_STACK_DIR ?? path.join(REPO_ROOT, '.riskmon', 'stack'));
}

/** The one line `npm run stack -- env` prints. */
export function envLine(env: StackEnv): string {
  return `export PG_URL=${env.PG_URL} RISK_PG_URL=${env.RISK_PG_URL} KAFKA_BROKERS=${env.KAFKA_BROKERS} REDIS_URL=${env.REDIS_URL}`;
}

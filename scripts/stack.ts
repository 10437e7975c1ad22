/**
 * Local services for development: `npm run stack -- up | down [--purge] | env | status | restart <pg|kafka|redis>`.
 * The logic lives in stack/index.ts so tests and the demo can use it too.
 */
import fs from 'node:fs';
import { defaultStackDir, envLine, restartService, SERVICES, stackDown, stackEnv, StackError, stackPrepare, stackStatus, stackUp, type ServiceName } from './stack/index.ts';
import { replicatedDir, replicatedDown, replicatedEnv, replicatedUp, type ReplicatedEnv } from './stack/replicated.ts';

const USAGE = `usage: npm run stack -- <command>
  up                       start PostgreSQL, Kafka and Redis on free ports (idempotent)
  up --topology replicated PostgreSQL, three KRaft brokers (RF 3, min ISR 2), a Redis Cluster (3 masters + 3
                           replicas) and a Redis Sentinel set (master, 2 replicas, 3 sentinels)
  env [--redis sentinel]   print: export PG_URL=… RISK_PG_URL=… KAFKA_BROKERS=… REDIS_URL=… (replicated: the
                           cluster's variables, or the sentinel set's with --redis sentinel)
  status                   each service with its port, pid and up/down
  down [--purge]           stop the services (--purge also deletes their data)
  restart <pg|kafka|redis> stop and start one service, keeping its data and port
  prepare                  check the binaries and fetch Kafka's jars (Maven), start nothing
data folder: ${defaultStackDir()} (set RISKMON_STACK_DIR to change it)`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const dir = defaultStackDir();
  switch (cmd) {
    case 'up': {
      const t0 = Date.now();
      const topology = optionOf(rest, '--topology') ?? 'single';
      if (topology !== 'single' && topology !== 'replicated') {
        console.error('--topology is single or replicated');
        return 2;
      }
      let rep: ReplicatedEnv | null = null;
      if (topology === 'replicated') rep = await replicatedUp(replicatedDir(dir));
      // The replicated Kafka and Redis count as services "from the environment" for the single-node launcher,
      // which then starts only PostgreSQL.
      const env = await stackUp({ dir, env: rep ? { ...process.env, KAFKA_BROKERS: rep.KAFKA_BROKERS, REDIS_URL: rep.REDIS_CLUSTER_URL } : process.env });
      console.log(`stack ready in ${((Date.now() - t0) / 1000).toFixed(1)}s (data in ${dir}); use it with:`);
      console.log(`  eval "$(npm run -s stack -- env)"`);
      console.log(rep ? replicatedLine(env, rep, 'cluster') : envLine(env));
      return 0;
    }
    case 'env': {
      const env = await stackEnv(dir);
      const rep = fs.existsSync(replicatedDir(dir)) ? await replicatedEnv(replicatedDir(dir)) : null;
      const mode = optionOf(rest, '--redis') === 'sentinel' ? 'sentinel' : 'cluster';
      console.log(rep && env.KAFKA_BROKERS === rep.KAFKA_BROKERS ? replicatedLine(env, rep, mode) : envLine(env));
      return 0;
    }
    case 'status': {
      for (const s of await stackStatus(dir)) {
        const where = s.state === 'external' ? s.url : `port ${s.port ?? '-'}  pid ${s.pid ?? '-'}`;
        console.log(`${s.name.padEnd(6)} ${s.state.padEnd(9)} ${where}`);
      }
      return 0;
    }
    case 'prepare':
      await stackPrepare();
      return 0;
    case 'down':
      await replicatedDown(replicatedDir(dir), { purge: rest.includes('--purge') });
      await stackDown(dir, { purge: rest.includes('--purge') });
      return 0;
    case 'restart': {
      const name = rest[0] as ServiceName;
      if (!SERVICES.includes(name)) {
        console.error(`restart needs one of: ${SERVICES.join(', ')}`);
        return 2;
      }
      await restartService(dir, name);
      console.log(`${name} restarted`);
      return 0;
    }
    default:
      console.error(USAGE);
      return cmd === undefined || cmd === 'help' || cmd === '--help' ? 0 : 2;
  }
}

function optionOf(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function replicatedLine(env: { PG_URL: string; RISK_PG_URL: string }, rep: ReplicatedEnv, redis: 'cluster' | 'sentinel'): string {
  const r = redis === 'cluster'
    ? `RISKMON_REDIS_MODE=cluster REDIS_URL=${rep.REDIS_CLUSTER_URL}`
    : `RISKMON_REDIS_MODE=sentinel REDIS_URL=${rep.REDIS_SENTINEL_URL} RISKMON_REDIS_SENTINEL_NAME=${rep.RISKMON_REDIS_SENTINEL_NAME}`;
  return `export PG_URL=${env.PG_URL} RISK_PG_URL=${env.RISK_PG_URL} KAFKA_BROKERS=${rep.KAFKA_BROKERS} RISKMON_TOPIC_REPLICATION=3 ${r}`;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof StackError ? `stack: ${err.message}` : err);
    process.exit(1);
  },
);

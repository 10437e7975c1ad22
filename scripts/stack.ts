/**
 * Local services for development: `npm run stack -- up | down [--purge] | env | status | restart <pg|kafka|redis>`.
 * The logic lives in stack-lib.ts so tests and the demo can use it too.
 */
import { defaultStackDir, envLine, restartService, SERVICES, stackDown, stackEnv, StackError, stackPrepare, stackStatus, stackUp, type ServiceName } from './stack-lib.ts';

const USAGE = `usage: npm run stack -- <command>
  up                       start PostgreSQL, Kafka and Redis on free ports (idempotent)
  env                      print: export PG_URL=… RISK_PG_URL=… KAFKA_BROKERS=… REDIS_URL=…
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
      const env = await stackUp({ dir });
      console.log(`stack ready in ${((Date.now() - t0) / 1000).toFixed(1)}s (data in ${dir}); use it with:`);
      console.log(`  eval "$(npm run -s stack -- env)"`);
      console.log(envLine(env));
      return 0;
    }
    case 'env':
      console.log(envLine(await stackEnv(dir)));
      return 0;
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

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof StackError ? `stack: ${err.message}` : err);
    process.exit(1);
  },
);

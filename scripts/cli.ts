/**
 * `riskmon <command>`: the composition root, at the top of the dependency graph (it imports every component; no
 * component imports it). Each component folder exports `start(env)`, which validates its configuration and returns
 * its services; `all` runs every component's services in one process. Commands are loaded lazily so `riskmon
 * migrate` does not load Kafka or Fastify.
 */
import { parseFlags, UsageError, wantsHelp, type FlagSpec } from '../lib/args.ts';
import { ConfigError } from '../lib/config.ts';
import { logger } from '../lib/logger.ts';
import { runServices, type Service } from '../lib/service.ts';

export type ComponentStart = (env?: NodeJS.ProcessEnv) => Promise<Service[]>;
type Command = { summary: string; usage?: string; run: (args: string[]) => Promise<number> };

const components: Record<string, () => Promise<{ start: ComponentStart }>> = {
  cdc: () => import('../cdc/index.ts'),
  aggregate: () => import('../aggregator/index.ts'),
  alerting: () => import('../alerting/index.ts'),
  api: () => import('../api/index.ts'),
};

async function runComponents(names: string[]): Promise<number> {
  const services: Service[] = [];
  for (const n of names) services.push(...(await (await components[n]()).start(process.env)));
  return runServices(services, logger.child({ component: names.length > 1 ? 'all' : names[0] }));
}

/** A long-running component: its options parsed like every command's (lib/args.ts), then it runs until stopped. */
function component(name: string, names: string[], summary: string, spec: Record<string, FlagSpec> = {}, usage?: string): Command {
  return {
    summary,
    usage,
    run: (args) => {
      if (wantsHelp(args)) { process.stdout.write(`usage: ${usage ?? `riskmon ${name}`}\n  ${summary}\n`); return Promise.resolve(0); }
      let flags;
      try {
        flags = parseFlags(name, args, spec);
      } catch (err) {
        if (!(err instanceof UsageError)) throw err;
        process.stderr.write(`riskmon ${name}: ${err.message}\nusage: ${usage ?? `riskmon ${name}`}\n`);
        return Promise.resolve(2);
      }
      if (flags['accept-gap']) process.env.RISKMON_ACCEPT_GAP = 'true';
      return runComponents(names);
    },
  };
}

const commands: Record<string, Command> = {
  cdc: component('cdc', ['cdc'], 'tail the source WAL (logical replication) into the Kafka topic',
    { 'accept-gap': { kind: 'bool', help: 'start although the slot is gone while the topic holds changes' } },
    'riskmon cdc [--accept-gap]  (--accept-gap: start although the slot is gone while the topic holds changes)'),
  aggregate: component('aggregate', ['aggregate'], 'consume the topic into per-merchant Redis buckets; close minutes'),
  alerting: component('alerting', ['alerting'], 'evaluate the rules on closed minutes; store alerts; send Slack'),
  api: component('api', ['api'], 'REST, WebSocket and the dashboard'),
  all: component('all', ['cdc', 'aggregate', 'alerting', 'api'], 'every component in one process'),
  migrate: {
    summary: 'create or upgrade the source reference schema (PG_URL) and the risk store (RISK_PG_URL)',
    usage: 'riskmon migrate [--source-only | --risk-only]',
    run: async (args) => (await import('../lib/migrate-cli.ts')).main(args),
  },
  replay: {
    summary: 'rebuild buckets and alerts from the retained topic starting at a source LSN',
    usage: 'riskmon replay --from-lsn <LSN> [--force]',
    run: async (args) => (await import('../aggregator/index.ts')).replayCommand(args),
  },
  backfill: {
    summary: 'rebuild the buckets of a range from the source tables, exactly, while the system runs',
    usage: 'riskmon backfill --days N | --from ISO [--to ISO] [--force]',
    run: async (args) => (await import('../aggregator/index.ts')).backfillCommand(args),
  },
  generate: {
    summary: 'write the reference workload into the source database',
    usage: 'riskmon generate backfill --days N | live --tps N --duration S  (see riskmon generate --help)',
    run: async (args) => (await import('./generate/cli.ts')).main(args),
  },
  status: { summary: 'pipeline status: slot lag, consumer lag, watermark, last closed minute', run: async (args) => (await import('../api/index.ts')).statusCommand(args) },
};

function help(): string {
  const rows = Object.entries(commands).map(([n, c]) => `  ${n.padEnd(10)} ${c.summary}${c.usage ? `\n  ${''.padEnd(10)} usage: ${c.usage}` : ''}`);
  return `riskmon — merchant risk monitoring from the transaction database's WAL\n\nusage: riskmon <command> [options]\n\n${rows.join('\n')}\n\nConfiguration comes from the environment; see docs/configuration.md.\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help());
    return name ? 0 : 2;
  }
  const cmd = commands[name];
  if (!cmd) {
    process.stderr.write(`riskmon: unknown command "${name}"\n\n${help()}`);
    return 2;
  }
  try {
    return await cmd.run(args);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`riskmon ${name}: ${err.message}\n`);
      return 2;
    }
    logger.error({ err }, `riskmon ${name} failed`);
    return 1;
  }
}

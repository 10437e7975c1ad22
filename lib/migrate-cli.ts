import { parseFlags, UsageError, wantsHelp } from './args.ts';
import { connections, readConfig } from './config.ts';
import { logger } from './logger.ts';
import { migrate } from './migrate.ts';

export async function main(args: string[]): Promise<number> {
  const usage = 'usage: riskmon migrate [--source-only | --risk-only]\n  creates or upgrades the source schema and the risk store (idempotent)\n';
  if (wantsHelp(args)) { process.stdout.write(usage); return 0; }
  let flags;
  try {
    flags = parseFlags('migrate', args, { 'source-only': { kind: 'bool', help: 'only the source schema' }, 'risk-only': { kind: 'bool', help: 'only the risk store' } });
    if (flags['source-only'] && flags['risk-only']) throw new UsageError('give --source-only or --risk-only, not both');
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`riskmon migrate: ${err.message}\n${usage}`);
    return 2;
  }
  const log = logger.child({ component: 'migrate' });
  const only = flags['source-only'] ? 'source' : flags['risk-only'] ? 'risk' : null;
  if (only !== 'risk') {
    const { pgUrl } = readConfig(connections('pgUrl'));
    const v = await migrate(pgUrl, 'source', log);
    log.info({ applied: v }, v.length ? 'source schema migrated' : 'source schema up to date');
  }
  if (only !== 'source') {
    const { riskPgUrl } = readConfig(connections('riskPgUrl'));
    const v = await migrate(riskPgUrl, 'risk', log);
    log.info({ applied: v }, v.length ? 'risk store migrated' : 'risk store up to date');
  }
  return 0;
}

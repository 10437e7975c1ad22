import { connections, readConfig } from './config.ts';
import { logger } from './logger.ts';
import { migrate } from './migrate.ts';

export async function main(args: string[]): Promise<number> {
  const log = logger.child({ component: 'migrate' });
  const only = args.includes('--source-only') ? 'source' : args.includes('--risk-only') ? 'risk' : null;
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

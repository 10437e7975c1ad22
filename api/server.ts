/** Starts the API process: config, dependencies, the app, listen; closes gracefully on stop. */
import { processClock } from '../lib/clock.ts';
import { readConfig } from '../lib/config.ts';
import { componentLogger } from '../lib/logger.ts';
import type { Service } from '../lib/service.ts';
import { buildApp } from './app.ts';
import { apiSpec } from './config.ts';
import { createDeps } from './deps.ts';
import { ensureWebBuilt } from './web-dist.ts';

export interface ApiService extends Service { /** the address it listens on, e.g. http://127.0.0.1:8080 */ readonly url: string }

export async function startApi(env: NodeJS.ProcessEnv = process.env): Promise<ApiService> {
  const cfg = readConfig(apiSpec, env);
  const log = componentLogger('api');
  if (!cfg.apiKeys.length) log.warn('RISKMON_API_KEYS is empty: every /api request will get 401');
  const webDist = await ensureWebBuilt(log);
  const deps = await createDeps(cfg, webDist, { now: processClock(cfg.clock, log) });
  const { app, hub } = await buildApp(deps, log);
  await hub.start();
  const address = await app.listen({ port: cfg.httpPort, host: cfg.httpHost || '0.0.0.0' });
  log.info({ address }, 'api listening');

  let stopped: () => void;
  const done = new Promise<void>((r) => { stopped = r; });
  let closing: Promise<void> | null = null;
  const stop = () => {
    closing ??= (async () => {
      await hub.stop();        // closes sockets, so app.close() does not wait on them
      await app.close();       // stops accepting, finishes in-flight requests
      await deps.close();
      stopped();
    })();
    return closing;
  };
  return { name: 'api', url: address.replace('0.0.0.0', '127.0.0.1'), run: () => done, stop, drain: stop };
}

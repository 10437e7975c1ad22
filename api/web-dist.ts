/** The built dashboard (web/dist). Built on first start when missing, so a fresh checkout serves it. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../lib/logger.ts';

export const WEB_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'web');
export const WEB_DIST = join(WEB_DIR, 'dist');

let building: Promise<string> | null = null;

/** Returns web/dist, building it with Vite when index.html is missing (or always, with force). Callers share one build. */
export function ensureWebBuilt(log?: Logger, opts: { force?: boolean } = {}): Promise<string> {
  if (!opts.force && !building && existsSync(join(WEB_DIST, 'index.html'))) return Promise.resolve(WEB_DIST);
  building ??= (async () => {
    log?.info('web/dist is missing: building the dashboard with vite');
    try {
      const vite = await import('vite');
      await vite.build({ configFile: join(WEB_DIR, 'vite.config.ts'), logLevel: 'warn' });
    } catch (err) {
      building = null;
      throw new Error(`the dashboard is not built and building it failed (${(err as Error).message}); run "npm run build:web" and start again`, { cause: err });
    }
    if (!existsSync(join(WEB_DIST, 'index.html'))) throw new Error('vite build finished but web/dist/index.html is missing');
    return WEB_DIST;
  })();
  return building;
}

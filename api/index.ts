/** The api component: REST, WebSocket and the dashboard. */
import type { Service } from '../lib/service.ts';
import { startApi } from './server.ts';

export { buildApp } from './app.ts';
export { startApi } from './server.ts';
export { apiSpec } from './config.ts';
export { main as statusCommand } from './status-cli.ts';

export async function start(env: NodeJS.ProcessEnv = process.env): Promise<Service[]> {
  return [await startApi(env)];
}

/**
 * One Prometheus registry per process. Components register their metrics on it (names prefixed `riskmon_`);
 * the API serves it at /metrics, and a component run on its own serves it on RISKMON_METRICS_PORT when set.
 */
import { createServer, type Server } from 'node:http';
import { collectDefaultMetrics, Registry } from 'prom-client';

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'riskmon_process_' });

export function serveMetrics(port: number, host = '127.0.0.1'): Promise<Server> {
  const server = createServer(async (req, res) => {
    if (req.url !== '/metrics') { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'content-type': registry.contentType }).end(await registry.metrics());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // Unreferenced: the component's services, not its metrics port, decide when the process ends.
    server.listen(port, host, () => resolve(server.unref()));
  });
}

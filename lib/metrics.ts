/**
 * One Prometheus registry per process. Components register their metrics on it (names prefixed `riskmon_`);
 * the API serves it at /metrics, and a component run on its own serves it on RISKMON_METRICS_PORT when set.
 */
import { createServer, type Server } from 'node:http';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'riskmon_process_' });

/**
 * The heap still in use just after the last full (mark-compact) collection: the live set, which is what a leak
 * grows. RSS and the heap's total also grow while V8 sizes its heap to the load, then plateau; this does not.
 */
const liveHeap = new Gauge({ name: 'riskmon_process_heap_live_bytes', help: 'heap in use just after the last full garbage collection (0 before the first)', registers: [registry] });
liveHeap.set(0);
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (((e as { detail?: { kind?: number } }).detail)?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) liveHeap.set(v8.getHeapStatistics().used_heap_size);
  }
}).observe({ entryTypes: ['gc'] });

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

/** The API's Prometheus metrics, registered once per process on the shared registry. */
import { Counter, Gauge, Histogram } from 'prom-client';
import { registry } from '../lib/metrics.ts';

export const httpRequests = new Histogram({
  name: 'riskmon_api_request_seconds', help: 'REST request time by route and status',
  labelNames: ['route', 'method', 'status'] as const, buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry],
});
export const wsClients = new Gauge({ name: 'riskmon_api_ws_clients', help: 'open WebSocket connections', registers: [registry] });
export const wsAlertsRelayed = new Counter({ name: 'riskmon_api_ws_alerts_total', help: 'alert transitions received on the channel and relayed', registers: [registry] });
export const wsReplayed = new Counter({ name: 'riskmon_api_ws_replayed_total', help: 'missed transitions replayed to reconnecting clients', registers: [registry] });
export const wsAlertUpdates = new Counter({ name: 'riskmon_api_ws_alert_updates_total', help: 'triage changes (alert_update) received on the channel and relayed', registers: [registry] });

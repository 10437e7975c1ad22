/** The API's Prometheus metrics, registered once per process on the shared registry. */
import { Counter, Gauge, Histogram } from 'prom-client';
import { registry } from '../lib/metrics.ts';
import type { PipelineStatus } from './status.ts';

export const httpRequests = new Histogram({
  name: 'riskmon_api_request_seconds', help: 'REST request time by route and status',
  labelNames: ['route', 'method', 'status'] as const, buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry],
});
export const wsClients = new Gauge({ name: 'riskmon_api_ws_clients', help: 'open WebSocket connections', registers: [registry] });
export const wsAlertsRelayed = new Counter({ name: 'riskmon_api_ws_alerts_total', help: 'alert transitions received on the channel and relayed', registers: [registry] });
export const wsReplayed = new Counter({ name: 'riskmon_api_ws_replayed_total', help: 'missed transitions replayed to reconnecting clients', registers: [registry] });
export const wsClosedSlow = new Counter({ name: 'riskmon_api_ws_closed_slow_total', help: 'WebSocket clients closed for not keeping up: send queue over RISKMON_WS_MAX_BUFFERED_BYTES (buffer) or no pong to a ping (ping)', labelNames: ['reason'] as const, registers: [registry] });
export const wsRefused = new Counter({ name: 'riskmon_api_ws_refused_total', help: 'WebSocket connections refused at a cap (per_key, total) or closed for flooding (messages)', labelNames: ['reason'] as const, registers: [registry] });
export const wsAlertUpdates = new Counter({ name: 'riskmon_api_ws_alert_updates_total', help: 'triage changes (alert_update) received on the channel and relayed', registers: [registry] });

/**
 * The pipeline as `riskmon status` sees it, read when Prometheus scrapes the api (the alert rules of ops/alerts.yml
 * use them): whether the slot has a reader, how far the watermark and the evaluator are behind the wall clock.
 * A part that cannot be read is left out of the scrape (the gauge keeps no stale value), and the rules' `absent`
 * clauses or the api's own health cover that. One status read serves every gauge of a scrape.
 */
let readStatus: (() => Promise<PipelineStatus>) | null = null;
let scrape: Promise<PipelineStatus | null> | null = null;
function statusForScrape(): Promise<PipelineStatus | null> {
  if (!readStatus) return Promise.resolve(null);
  scrape ??= readStatus().catch(() => null).finally(() => setTimeout(() => { scrape = null; }, 1000).unref());
  return scrape;
}
function pipelineGauge(name: string, help: string, pick: (s: PipelineStatus) => number | null) {
  return new Gauge({
    name, help, registers: [registry],
    async collect() {
      this.reset();
      const st = await statusForScrape();
      const v = st ? pick(st) : null;
      if (v !== null && Number.isFinite(v)) this.set(v);
    },
  });
}
pipelineGauge('riskmon_pipeline_slot_active', '1 when the replication slot has a reader attached (the cdc), 0 when not', (s) => (s.slot.active === null ? null : s.slot.active ? 1 : 0));
pipelineGauge('riskmon_pipeline_watermark_lag_seconds', 'wall clock minus the event-time watermark (newest commit time every partition has seen)', (s) => (s.watermark.behindMs === null ? null : s.watermark.behindMs / 1000));
pipelineGauge('riskmon_pipeline_evaluator_lag_seconds', 'wall clock minus the end of the last minute the evaluator closed', (s) => (s.evaluator.behindMs === null ? null : s.evaluator.behindMs / 1000));

/** Where the pipeline gauges read from (the api's status sources); set once the api's connections exist. */
export function setPipelineStatusSource(read: () => Promise<PipelineStatus>): void {
  readStatus = read;
}

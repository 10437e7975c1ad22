/** The cdc's Prometheus metrics (registry of lib/metrics.ts). */
import { Counter, Gauge, Histogram } from 'prom-client';
import { registry } from '../lib/metrics.ts';

const registers = [registry];
const LATENCY_BUCKETS = [0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export const cdcMetrics = {
  changes: new Counter({ name: 'riskmon_cdc_changes_total', help: 'row changes published to the topic', labelNames: ['table', 'op'], registers }),
  skipped: new Counter({ name: 'riskmon_cdc_skipped_total', help: 'changes skipped on restart because the topic already held them', registers }),
  dlq: new Counter({ name: 'riskmon_cdc_dlq_total', help: 'changes sent to the dead-letter topic', labelNames: ['reason'], registers }),
  heartbeats: new Counter({ name: 'riskmon_cdc_heartbeats_total', help: 'heartbeats published (one per partition each)', registers }),
  unchangedToast: new Counter({ name: 'riskmon_cdc_unchanged_toast_total', help: 'columns left out of an update because pgoutput sent an unchanged TOAST value without an old row', registers }),
  publishLatency: new Histogram({
    name: 'riskmon_cdc_publish_latency_seconds', help: 'source commit time to Kafka acknowledgement of the whole transaction',
    buckets: LATENCY_BUCKETS, registers,
  }),
  receiveLatency: new Histogram({
    name: 'riskmon_cdc_receive_latency_seconds', help: 'source commit time to the transaction reaching the router (the read side of the publish latency; every 8th transaction)',
    buckets: LATENCY_BUCKETS, registers,
  }),
  ackLag: new Gauge({ name: 'riskmon_cdc_ack_lag_units', help: 'transactions received but not yet confirmed to PostgreSQL', registers }),
  bufferedBytes: new Gauge({ name: 'riskmon_cdc_buffered_bytes', help: 'bytes of change events waiting for Kafka', registers }),
  paused: new Gauge({ name: 'riskmon_cdc_paused', help: '1 while replication is paused by backpressure', registers }),
  confirmedLsn: new Gauge({ name: 'riskmon_cdc_confirmed_lsn', help: 'LSN last confirmed to PostgreSQL (as a number)', registers }),
  slotLagBytes: new Gauge({ name: 'riskmon_cdc_slot_lag_bytes', help: 'pg_current_wal_lsn() - confirmed_flush_lsn of the slot', registers }),
  slotRetainedBytes: new Gauge({ name: 'riskmon_cdc_slot_retained_bytes', help: 'pg_current_wal_lsn() - restart_lsn (WAL the slot keeps)', registers }),
  slotSafeWalBytes: new Gauge({ name: 'riskmon_cdc_slot_safe_wal_bytes', help: 'safe_wal_size: WAL that can still be written before the slot is invalidated (-1 unlimited)', registers }),
  slotWalStatus: new Gauge({ name: 'riskmon_cdc_slot_wal_status', help: '1 for the slot\'s current wal_status', labelNames: ['status'], registers }),
  produceRetries: new Counter({ name: 'riskmon_cdc_produce_retries_total', help: 'rounds of re-sending a partition\'s unacknowledged batches (leader changes, brokers gone)', registers }),
  restarts: new Counter({ name: 'riskmon_cdc_session_restarts_total', help: 'replication sessions restarted after an error', registers }),
};

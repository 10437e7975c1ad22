/**
 * Watches the replication slot: lag (WAL written since the confirmed position), WAL kept, wal_status and
 * safe_wal_size. Warns before max_slot_wal_keep_size invalidates the slot; an invalidated slot ('lost') is
 * reported loudly with the recovery procedure and stops the cdc.
 */
import pg from 'pg';
import { systemClock, type Clock } from '../lib/clock.ts';
import type { Logger } from '../lib/logger.ts';
import { RunState, type Service } from '../lib/service.ts';
import { RECOVERY, SlotLostError } from './errors.ts';
import { cdcMetrics as M } from './metrics.ts';

export interface SlotHealth {
  slot: string;
  active: boolean;
  walStatus: string | null;
  lagBytes: number;
  retainedBytes: number;
  safeWalBytes: number | null;
  confirmedFlushLsn: string | null;
  at: string;
}

export const SLOT_HEALTH_SQL = `SELECT active, wal_status, safe_wal_size::float8 AS safe,
  confirmed_flush_lsn::text AS confirmed,
  pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::float8 AS lag,
  pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::float8 AS retained
  FROM pg_replication_slots WHERE slot_name = $1`;

export class SlotHealthService implements Service {
  readonly name = 'cdc-slot-health';
  readonly #state = new RunState();

  constructor(private readonly pgUrl: string, private readonly slot: string, private readonly warnBytes: number,
    private readonly log: Logger, private readonly intervalMs = 10_000, private readonly now: Clock = systemClock) {}

  async run(): Promise<void> {
    while (this.#state.shouldRun()) {
      const c = new pg.Client({ connectionString: this.pgUrl, application_name: 'riskmon-cdc-health' });
      c.on('error', () => {});
      try {
        await c.connect();
        while (this.#state.shouldRun()) {
          this.#check((await c.query(SLOT_HEALTH_SQL, [this.slot])).rows[0]);
          await this.#state.sleep(this.intervalMs);
        }
      } catch (err) {
        if (err instanceof SlotLostError) throw err;
        if (this.#state.shouldRun()) this.log.warn({ err }, 'slot health check failed');
        await this.#state.sleep(this.intervalMs);
      } finally {
        await c.end().catch(() => {});
      }
    }
  }

  #check(r: any): void {
    if (!r) return; // not created yet (the cdc creates it at start)
    const latest: SlotHealth = {
      slot: this.slot, active: r.active, walStatus: r.wal_status, lagBytes: r.lag ?? 0, retainedBytes: r.retained ?? 0,
      safeWalBytes: r.safe, confirmedFlushLsn: r.confirmed, at: new Date(this.now()).toISOString(),
    };
    M.slotLagBytes.set(latest.lagBytes);
    M.slotRetainedBytes.set(latest.retainedBytes);
    M.slotSafeWalBytes.set(r.safe ?? -1);
    for (const s of ['reserved', 'extended', 'unreserved', 'lost']) M.slotWalStatus.labels(s).set(s === r.wal_status ? 1 : 0);
    if (r.wal_status === 'lost') {
      this.log.fatal({ slot: this.slot, recovery: RECOVERY(this.slot) }, `REPLICATION SLOT ${this.slot} IS LOST: ${RECOVERY(this.slot)}`);
      throw new SlotLostError(this.slot);
    }
    if (r.wal_status === 'unreserved' || (r.safe !== null && r.safe < this.warnBytes)) {
      this.log.warn({ slot: this.slot, walStatus: r.wal_status, safeWalBytes: r.safe, lagBytes: r.lag },
        'replication slot is close to invalidation by max_slot_wal_keep_size: the cdc is too far behind. Make it catch up (is it running? is Kafka up?) or raise max_slot_wal_keep_size');
    } else if (r.lag > this.warnBytes) {
      this.log.warn({ slot: this.slot, lagBytes: r.lag }, 'replication slot lags behind the source');
    }
  }

  async stop(): Promise<void> { this.#state.stop(); }
}

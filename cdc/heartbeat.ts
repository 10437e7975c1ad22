/**
 * Writes a non-transactional logical message every RISKMON_HEARTBEAT_MS. Decoded through the slot, it gives the
 * cdc an LSN and the source's clock while no transaction commits; the cdc turns it into a heartbeat on every
 * partition so the aggregator's watermark keeps moving, and acknowledges it so the slot keeps advancing.
 */
import { createClient } from '../lib/pg.ts';
import type { Logger } from '../lib/logger.ts';
import { backoffMs, RunState, type Service } from '../lib/service.ts';
import { HEARTBEAT_PREFIX } from './router.ts';

export class HeartbeatService implements Service {
  readonly name = 'cdc-heartbeat';
  readonly #state = new RunState();

  constructor(private readonly pgUrl: string, private readonly intervalMs: number, private readonly log: Logger) {}

  async run(): Promise<void> {
    let attempt = 0;
    while (this.#state.shouldRun()) {
      const c = createClient({ connectionString: this.pgUrl, application_name: 'riskmon-cdc-heartbeat' }); // errors surface in the next query
      try {
        await c.connect();
        attempt = 0;
        while (this.#state.shouldRun()) {
          await c.query(
            `SELECT pg_logical_emit_message(false, $1, to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))`,
            [HEARTBEAT_PREFIX]);
          await this.#state.sleep(this.intervalMs);
        }
      } catch (err) {
        if (!this.#state.shouldRun()) break;
        const wait = backoffMs(attempt++, 500, 10_000);
        this.log.warn({ err, retryInMs: wait }, 'heartbeat failed');
        await this.#state.sleep(wait);
      } finally {
        await c.end().catch(() => {});
      }
    }
  }

  async stop(): Promise<void> { this.#state.stop(); }
}

/**
 * Keeps REPLICA IDENTITY FULL on the partitions of a mapped partitioned table as they are created (PostgreSQL does
 * not carry a parent's replica identity to its partitions): a check at start (setup.ts) and one every
 * RISKMON_PARTITION_CHECK_MS. A partition created ahead of its first row — the usual monthly layout — is covered
 * before any row can need an old image.
 */
import type { Logger } from '../lib/logger.ts';
import type { Mapping } from '../lib/mapping.ts';
import { createClient } from '../lib/pg.ts';
import { RunState, type Service } from '../lib/service.ts';
import { syncPartitionIdentity } from './setup.ts';

export class PartitionIdentityService implements Service {
  readonly name = 'cdc-partitions';
  readonly #state = new RunState();

  constructor(private readonly pgUrl: string, private readonly mapping: Mapping, private readonly intervalMs: number, private readonly log: Logger) {}

  async run(): Promise<void> {
    while (this.#state.shouldRun()) {
      await this.#state.sleep(this.intervalMs);
      if (!this.#state.shouldRun()) return;
      const c = createClient({ connectionString: this.pgUrl, application_name: 'riskmon-cdc-partitions' });
      try {
        await c.connect();
        await syncPartitionIdentity(c, this.mapping, this.log);
      } catch (err) {
        if (this.#state.shouldRun()) this.log.warn({ err }, 'partition replica identity check failed');
      } finally {
        await c.end().catch(() => {});
      }
    }
  }

  async stop(): Promise<void> { this.#state.stop(); }
}

/**
 * A few connections that each run one COPY at a time. `submit` waits for a free connection (backpressure: the
 * generator never runs more than `size` chunks ahead of the database) and returns the promise of that COPY's
 * commit; `drain` waits for everything submitted.
 */
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';

export class CopyPool {
  readonly #free: pg.Client[] = [];
  readonly #waiters: ((c: pg.Client) => void)[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  #clients: pg.Client[] = [];
  #failure: unknown = null;

  static async open(pgUrl: string, size: number, sessionSql: string[] = []): Promise<CopyPool> {
    const pool = new CopyPool();
    for (let i = 0; i < size; i++) {
      const c = new pg.Client({ connectionString: pgUrl, application_name: 'riskmon-generate-backfill' });
      await c.connect();
      for (const sql of sessionSql) await c.query(sql);
      pool.#clients.push(c);
      pool.#free.push(c);
    }
    return pool;
  }

  /**
   * Starts `COPY <target> FROM STDIN` with `text` on a free connection. Resolves once the COPY has begun, with
   * `committed` (a promise in an object, so awaiting submit does not wait for the commit).
   */
  async submit(target: string, text: string): Promise<{ committed: Promise<void> }> {
    if (this.#failure) throw this.#failure;
    const client = this.#free.pop() ?? (await new Promise<pg.Client>((r) => this.#waiters.push(r)));
    const p = new Promise<void>((resolve, reject) => {
      const stream = client.query(copyFrom(`COPY ${target} FROM STDIN`));
      stream.on('finish', resolve);
      stream.on('error', reject);
      stream.end(text);
    }).catch((err) => { this.#failure ??= err; throw err; })
      .finally(() => {
        this.#inFlight.delete(p);
        const w = this.#waiters.shift();
        if (w) w(client); else this.#free.push(client);
      });
    p.catch(() => {}); // observed through drain()/submit()
    this.#inFlight.add(p);
    return { committed: p };
  }

  /** Waits for every submitted COPY; throws the first failure. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.#inFlight]);
    if (this.#failure) throw this.#failure;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#inFlight]);
    await Promise.allSettled(this.#clients.map((c) => c.end()));
  }
}

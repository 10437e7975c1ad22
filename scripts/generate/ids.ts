/**
 * Payment and cancel ids. The reference schema has no id defaults, so generators reserve ranges from one row in
 * `riskmon_generator_state`: the UPDATE's row lock serializes concurrent generators (a backfill and a live run, or
 * two live runs) and `greatest(…, max(id) + 1)` skips rows that others inserted with their own ids. Payments and
 * cancels share the id space, so an id names one row in either table.
 */
import type pg from 'pg';

type Queryable = Pick<pg.Client, 'query'>;

export async function ensureIdState(db: Queryable): Promise<void> {
  // Two first runs at once may both try CREATE TABLE; the loser's 23505/42P07 means the table is there.
  try {
    await db.query(`CREATE TABLE IF NOT EXISTS riskmon_generator_state (
      singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
      next_id bigint NOT NULL)`);
  } catch (err) {
    if (!['23505', '42P07'].includes((err as { code?: string }).code ?? '')) throw err;
  }
  await db.query('INSERT INTO riskmon_generator_state (next_id) VALUES (1) ON CONFLICT DO NOTHING');
}

/** Reserves `count` consecutive ids; returns the first. */
export async function reserveIds(db: Queryable, count: number): Promise<number> {
  const { rows } = await db.query<{ first: string }>(
    `UPDATE riskmon_generator_state SET next_id = greatest(next_id,
       (SELECT coalesce(max(payment_id), 0) + 1 FROM payments),
       (SELECT coalesce(max(cancel_id), 0) + 1 FROM payment_cancels)) + $1
     RETURNING next_id - $1 AS first`, [count]);
  const first = Number(rows[0].first);
  if (!Number.isSafeInteger(first + count)) throw new Error(`payment ids reached ${first}: beyond what the generator handles (2^53)`);
  return first;
}

/**
 * Hands out ids from reserved blocks, reserving the next block when half of the current one is used, so a live
 * run rarely waits. At most one reservation is in flight (they share one connection).
 */
export class IdBlocks {
  #next = 0;
  #end = 0;
  /** First id of a reserved block not in use yet. */
  #spare: number | null = null;
  #fetching: Promise<void> | null = null;

  constructor(private readonly reserve: (count: number) => Promise<number>, private readonly block = 10_000) {}

  async start(): Promise<void> {
    await this.refill();
  }

  /** The next id, or null when the block is used up before the next one arrived (then await refill()). */
  take(): number | null {
    if (this.#next >= this.#end && this.#spare !== null) {
      this.#next = this.#spare;
      this.#end = this.#spare + this.block;
      this.#spare = null;
    }
    if (this.#end - this.#next <= this.block / 2 && this.#spare === null && !this.#fetching) void this.#fetch().catch(() => {});
    return this.#next < this.#end ? this.#next++ : null;
  }

  /** Waits until a block is reserved (rethrows a failed reservation). */
  async refill(): Promise<void> {
    if (this.#spare === null) await (this.#fetching ?? this.#fetch());
  }

  #fetch(): Promise<void> {
    const f = this.reserve(this.block)
      .then((first) => { this.#spare = first; })
      .finally(() => { this.#fetching = null; });
    this.#fetching = f;
    return f;
  }
}

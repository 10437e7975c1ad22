/**
 * Which LSN may be confirmed to PostgreSQL. Units (transactions, heartbeats) are tracked in stream order; a unit
 * is done when it has committed and Kafka acknowledged each of its messages. The confirmable LSN is the end LSN of
 * the last unit of the longest done prefix, so a crash never loses an unacknowledged change. Pure.
 */
export interface Unit {
  pending: number;
  /** LSN to confirm once done (commit end LSN); null until the commit arrived. */
  confirm: bigint | null;
  /** Commit time (epoch ms) for the publish latency metric. */
  commitMs: number;
}

export class AckTracker {
  #units: Unit[] = [];
  #head = 0;
  #confirmed: bigint;

  constructor(confirmed: bigint) { this.#confirmed = confirmed; }

  begin(commitMs: number): Unit {
    const u: Unit = { pending: 0, confirm: null, commitMs };
    this.#units.push(u);
    return u;
  }

  /** One more message of `u` sent to Kafka. */
  sent(u: Unit): void { u.pending++; }

  /** The unit's last message was handed out; it may be confirmed at `lsn` once acknowledged. */
  commit(u: Unit, lsn: bigint): Unit[] { u.confirm = lsn; return this.#advance(); }

  /** Kafka acknowledged one message of `u`. Returns the units that became confirmable, in order. */
  acked(u: Unit): Unit[] {
    u.pending--;
    return this.#advance();
  }

  #advance(): Unit[] {
    const done: Unit[] = [];
    while (this.#head < this.#units.length) {
      const u = this.#units[this.#head];
      if (u.confirm === null || u.pending > 0) break;
      if (u.confirm > this.#confirmed) this.#confirmed = u.confirm;
      done.push(u);
      this.#head++;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#units.length) {
      this.#units = this.#units.slice(this.#head);
      this.#head = 0;
    }
    return done;
  }

  /** Raise the confirmed LSN without a unit (keepalive while nothing is in flight). */
  idleAdvance(lsn: bigint): boolean {
    if (!this.idle() || lsn <= this.#confirmed) return false;
    this.#confirmed = lsn;
    return true;
  }

  idle(): boolean { return this.#head === this.#units.length; }
  get inFlight(): number { return this.#units.length - this.#head; }
  get confirmed(): bigint { return this.#confirmed; }
}

/**
 * The pausable replication source: one pgoutput stream from a slot, delivered to a handler one message at a time,
 * in order (keepalives included, as `{tag: 'keepalive'}`), with backpressure by awaiting — the socket is not read
 * further while the queue of received messages is long or the handler's sink is full (as zero-cache's stream.ts).
 * It never acknowledges by itself (`acknowledge.auto: false, timeoutSeconds: 0`): positions go upstream only
 * through `acknowledge`, which the ack sink calls with what Kafka holds.
 */
import type pg from 'pg';
import { LogicalReplicationService } from 'pg-logical-replication';
import { formatLsn } from '../lib/lsn.ts';
import { TextPgoutputPlugin, type DecodedMessage } from './decode.ts';
import { cdcMetrics as M } from './metrics.ts';

export type Keepalive = { tag: 'keepalive'; walEnd: string; shouldRespond: boolean };
export type Incoming = DecodedMessage | Keepalive;

/** What to wait for before taking the next message (a sink over its limit), or null to go on at once. */
export type Backpressure = () => Promise<void> | null;

export class ReplicationSource {
  readonly #service: LogicalReplicationService;
  readonly #queue: Incoming[] = [];
  #head = 0;
  #processing = false;
  #paused = false;
  /** Messages received per tag (progress log). */
  readonly received: Record<string, number> = {};

  constructor(
    private readonly o: { pgUrl: string; slot: string; publication: string; maxQueued: number },
    private readonly handle: (m: Incoming) => Promise<void> | void,
    private readonly backpressure: Backpressure,
    private readonly fail: (err: Error) => void,
  ) {
    this.#service = new LogicalReplicationService(
      { connectionString: o.pgUrl, options: '-c DateStyle=ISO -c TimeZone=UTC' } as pg.ClientConfig, // UTC: the cheap path of timestampToIso
      { acknowledge: { auto: false, timeoutSeconds: 0 } },
    );
    this.#service.on('data', (_lsn: string, msg: DecodedMessage) => this.#enqueue(msg));
    this.#service.on('heartbeat', (walEnd: string, _ts: number, shouldRespond: boolean) => this.#enqueue({ tag: 'keepalive', walEnd, shouldRespond }));
    this.#service.on('error', (err: Error) => fail(err));
  }

  get paused(): boolean { return this.#paused; }

  /** Streams from `from` (the slot's confirmed position); rejects when the stream ends or fails. */
  stream(from: bigint): Promise<never> {
    const plugin = new TextPgoutputPlugin({ protoVersion: 1, publicationNames: [this.o.publication], messages: true });
    return this.#service.subscribe(plugin, this.o.slot, formatLsn(from)).then(() => { throw new Error('replication stream ended'); });
  }

  /** Standby status update: everything up to `confirmed` (exclusive end LSN) is durable downstream. */
  acknowledge(confirmed: bigint): void {
    // pg-logical-replication's acknowledge(lsn) reports lsn+1; we report exact positions.
    if (confirmed > 0n) void this.#service.acknowledge(formatLsn(confirmed - 1n));
  }

  async destroy(): Promise<void> {
    await this.#service.destroy().catch(() => {});
  }

  /**
   * The library has no flow control: pausing its connection's socket stops reading WAL (the server then waits
   * on TCP) without ending the session. Reached through a private field of pg-logical-replication 2.x.
   */
  #socket(): { pause(): void; resume(): void } | undefined {
    return (this.#service as any)._connection?.stream;
  }

  #pause(): void { if (!this.#paused) { this.#paused = true; this.#socket()?.pause(); M.paused.set(1); } }
  #resume(): void { if (this.#paused) { this.#paused = false; this.#socket()?.resume(); M.paused.set(0); } }

  #enqueue(m: Incoming): void {
    this.received[m.tag] = (this.received[m.tag] ?? 0) + 1;
    if (this.#processing) {
      this.#queue.push(m);
      if (this.#queue.length - this.#head > this.o.maxQueued) this.#pause();
      return;
    }
    // Nothing waits before it (the common case): handle it now, with no queue and no promise per message. Only a
    // handler's promise or backpressure hands over to #process, which queues what arrives meanwhile.
    this.#processing = true;
    let pending: Promise<void> | void;
    let wait: Promise<void> | null = null;
    try {
      pending = this.handle(m);
      if (!pending) wait = this.backpressure();
    } catch (err) {
      this.#processing = false;
      this.fail(err as Error);
      return;
    }
    if (pending || wait) void this.#process(pending || null, wait);
    else this.#processing = false;
  }

  /**
   * Finishes the message being handled (its handler's promise `pending`, then any backpressure `wait`), then takes
   * the queued messages in order, one at a time, until none is left.
   */
  async #process(pending: Promise<void> | null, wait: Promise<void> | null): Promise<void> {
    const queue = this.#queue;
    try {
      if (pending) {
        await pending;
        wait = this.backpressure();
      }
      for (;;) {
        if (wait) {
          this.#pause();
          await wait;
        }
        if (this.#head >= queue.length) break;
        const msg = queue[this.#head];
        queue[this.#head++] = undefined as never;
        const r = this.handle(msg);
        if (r) await r;
        wait = this.backpressure();
        if (this.#head > 4096 && this.#head * 2 > queue.length) { queue.splice(0, this.#head); this.#head = 0; }
      }
      queue.length = 0;
      this.#head = 0;
      this.#resume();
    } catch (err) {
      this.fail(err as Error);
    } finally {
      this.#processing = false;
    }
  }
}

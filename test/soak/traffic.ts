/**
 * Live traffic for the soak: a steady `generate live` at `tps`, and bursts (a second live run for a few seconds)
 * that lift the rate to `burstTps`. Every run carries the injected scenarios, so a stopped merchant stays stopped.
 * `renew()` replaces the steady run (after a PostgreSQL restart its id-reservation connection is gone).
 */
import { live, type LiveRun, type LiveStats, type Scenario } from '../../scripts/generate/index.ts';

export class Traffic {
  #steady: LiveRun | null = null;
  readonly #bursts = new Set<LiveRun>();
  readonly #finished: LiveStats[] = [];
  #seed = 1000;

  constructor(private readonly pgUrl: string, private readonly o: { tps: number; burstTps: number; merchants: number; scenarios: Scenario[]; now?: () => number }) {}

  async start(): Promise<void> {
    this.#steady = await this.#run(this.o.tps);
  }

  async renew(): Promise<void> {
    const old = this.#steady;
    this.#steady = null;
    if (old) this.#finished.push(await old.stop());
    this.#steady = await this.#run(this.o.tps);
  }

  /** Lifts the rate to burstTps for `seconds`. */
  async burst(seconds: number): Promise<void> {
    const extra = this.o.burstTps - this.o.tps;
    if (extra <= 0) return;
    const run = await this.#run(extra, seconds);
    this.#bursts.add(run);
    void run.done.then((s) => { this.#bursts.delete(run); this.#finished.push(s); });
  }

  async stop(): Promise<{ payments: number; cancels: number; late: number; errors: number; missed: number }> {
    const runs = [this.#steady, ...this.#bursts].filter((r): r is LiveRun => r !== null);
    this.#steady = null;
    this.#bursts.clear();
    this.#finished.push(...(await Promise.all(runs.map((r) => r.stop()))));
    const sum = { payments: 0, cancels: 0, late: 0, errors: 0, missed: 0 };
    for (const s of this.#finished) for (const k of Object.keys(sum) as (keyof typeof sum)[]) sum[k] += s[k];
    return sum;
  }

  #run(tps: number, durationS?: number): Promise<LiveRun> {
    return live(this.pgUrl, {
      tps, durationS, merchants: this.o.merchants, scenarios: this.o.scenarios, seed: this.#seed++, now: this.o.now,
      connections: Math.min(32, Math.max(4, Math.ceil(tps / 50))), onError: () => {},
    });
  }
}

/**
 * The riskmon components as child processes (`node scripts/riskmon.mjs <cmd>`), supervised the way systemd
 * would: a component that exits on its own is started again after a second (and counted, so the soak can report
 * it); `kill(name)` is a crash injection (SIGKILL) followed by an immediate restart.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { join } from 'node:path';
import { spawnRiskmon } from '../harness/index.ts';

export type Component = 'cdc' | 'aggregate' | 'alerting' | 'api';

export class Fleet {
  readonly #children = new Map<Component, ChildProcess>();
  readonly #env = new Map<Component, NodeJS.ProcessEnv>();
  readonly #expected = new Set<ChildProcess>();
  /** Exits nobody asked for: component → exit codes. */
  readonly unexpectedExits = new Map<Component, (number | string)[]>();
  #closing = false;

  constructor(private readonly logDir: string, private readonly log: (line: string) => void) {
    fs.mkdirSync(logDir, { recursive: true });
    // Never leave components running behind a crashed soak or test.
    process.once('exit', () => { for (const c of this.#children.values()) c.kill('SIGKILL'); });
  }

  start(name: Component, env: NodeJS.ProcessEnv): void {
    this.#env.set(name, env);
    const child = spawnRiskmon([name], { env, logFile: join(this.logDir, `${name}.log`) });
    this.#children.set(name, child);
    child.on('exit', (code, signal) => {
      if (this.#expected.delete(child) || this.#closing) return;
      const why = code ?? signal ?? '?';
      const file = join(this.logDir, `${name}.log`);
      // The log folder may go with the soak's stack: keep the component's last words in the soak's own output.
      const tail = fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-40).map((l) => `    ${l.slice(0, 600)}`).join('\n');
      this.log(`${name} exited by itself (${why}); restarting it in 1 s — see ${file}; its last lines:\n${tail}`);
      const list = this.unexpectedExits.get(name) ?? [];
      list.push(why);
      this.unexpectedExits.set(name, list);
      setTimeout(() => { if (!this.#closing && this.#children.get(name) === child) this.start(name, env); }, 1000);
    });
  }

  /** SIGKILL, wait for the exit, start again with the same environment. */
  async kill(name: Component): Promise<void> {
    const child = this.#children.get(name);
    if (!child) throw new Error(`${name} is not running`);
    await this.#killAndWait(child);
    this.start(name, this.#env.get(name)!);
  }

  /** SIGKILL without a restart (start it again with start()). */
  async stop(name: Component): Promise<void> {
    const child = this.#children.get(name);
    if (child) await this.#killAndWait(child);
  }

  async #killAndWait(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    this.#expected.add(child);
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
  }

  async stopAll(): Promise<void> {
    this.#closing = true;
    await Promise.all([...this.#children.values()].map((c) => this.#killAndWait(c)));
  }
}

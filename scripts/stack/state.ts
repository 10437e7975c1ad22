/** state.json and the lock directory: every state change of a data folder happens under the lock. */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { StackError, StackState } from './common.ts';
import { pidAlive, sleep } from './host.ts';

export function statePath(dir: string): string {
  return path.join(dir, 'state.json');
}

export async function readState(dir: string): Promise<StackState> {
  try {
    const raw = JSON.parse(await fsp.readFile(statePath(dir), 'utf8')) as Partial<StackState>;
    return { services: raw.services ?? {}, external: raw.external ?? {}, holders: raw.holders ?? [], pgBase: raw.pgBase };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { services: {}, external: {}, holders: [] };
    throw err;
  }
}

export async function writeState(dir: string, state: StackState): Promise<void> {
  const tmp = `${statePath(dir)}.${process.pid}.tmp`;
  await fsp.writeFile(tmp, JSON.stringify(state, null, 2) + '\n');
  await fsp.rename(tmp, statePath(dir));
}

/** mkdir is atomic, so a lock directory holding the owner's pid works across processes; a dead owner's lock is taken over. */
export async function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const lock = path.join(dir, '.lock');
  const deadline = Date.now() + 10 * 60_000;
  await fsp.mkdir(dir, { recursive: true });
  for (;;) {
    try {
      await fsp.mkdir(lock);
      await fsp.writeFile(path.join(lock, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number(await fsp.readFile(path.join(lock, 'pid'), 'utf8').catch(() => '0'));
      const stat = await fsp.stat(lock).catch(() => undefined);
      // No pid yet and old: the owner died between mkdir and writeFile.
      const orphan = owner ? !pidAlive(owner) : stat !== undefined && Date.now() - stat.mtimeMs > 10_000;
      if (orphan) await fsp.rm(lock, { recursive: true, force: true });
      else if (Date.now() > deadline) throw new StackError(`stack in ${dir} is locked by pid ${owner}`);
      else await sleep(200);
    }
  }
  try {
    return await fn();
  } finally {
    await fsp.rm(lock, { recursive: true, force: true });
  }
}

/** PostgreSQL 15: initdb, start, the reference databases. */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { PG_MAJOR, ServiceState, StackError, StackState, TIMEOUT_MS } from './common.ts';
import { withDatabase } from './urls.ts';
import { aptInstall, autoInstallAllowed, isRoot, readPidFile, tail } from './host.ts';

/**
 * PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` OS user. That user must be
 * able to reach the folder; if the data folder is under an unreachable path (e.g. /root), the cluster goes to
 * /var/tmp/riskmon-pg/<hash> instead (recorded in state.json, removed by `down --purge`).
 */
export function pgBaseDir(dir: string, state: StackState): string {
  if (state.pgBase) return state.pgBase;
  let base = path.join(dir, 'pg');
  if (isRoot()) {
    ensurePostgresUser();
    const probe = spawnSync('runuser', ['-u', 'postgres', '--', 'test', '-x', dir]);
    if (probe.status !== 0) base = path.join('/var/tmp/riskmon-pg', crypto.createHash('sha1').update(dir).digest('hex').slice(0, 12));
  }
  state.pgBase = base;
  return base;
}

export function pgDataDir(state: StackState): string {
  return path.join(state.pgBase ?? '', 'data');
}

export function pgPid(state: StackState): number | undefined {
  return state.pgBase ? readPidFile(path.join(pgDataDir(state), 'postmaster.pid')) : undefined;
}

export let pgBin: string | undefined;

export function findPgBin(env: NodeJS.ProcessEnv): string {
  if (pgBin) return pgBin;
  const candidates = [env.RISKMON_PG_BIN, `/usr/lib/postgresql/${PG_MAJOR}/bin`];
  const cfg = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (cfg.status === 0) candidates.push(cfg.stdout.trim());
  for (const c of candidates) if (c && fs.existsSync(path.join(c, 'initdb')) && fs.existsSync(path.join(c, 'postgres'))) return (pgBin = c);
  if (autoInstallAllowed(env)) {
    aptInstall([`postgresql-${PG_MAJOR}`]);
    return findPgBin({ ...env, RISKMON_AUTO_INSTALL: '0', CI: '' });
  }
  throw new StackError(
    `PostgreSQL ${PG_MAJOR} server binaries (initdb, postgres) not found in /usr/lib/postgresql/${PG_MAJOR}/bin or RISKMON_PG_BIN. ` +
      `Install them: \`apt-get install -y postgresql-${PG_MAJOR}\` (or run with RISKMON_AUTO_INSTALL=1 as root).`,
  );
}

export function runPgTool(state: StackState, tool: string, args: string[], opts: SpawnSyncOptions = {}): { status: number | null; output: string } {
  const bin = path.join(pgBin ?? findPgBin(process.env), tool);
  const [cmd, argv] = isRoot() ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  const r = spawnSync(cmd, argv, { encoding: 'utf8', cwd: state.pgBase, ...opts });
  return { status: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

export async function startPg(dir: string, state: StackState, st: ServiceState, env: NodeJS.ProcessEnv): Promise<number> {
  findPgBin(env);
  const base = pgBaseDir(dir, state);
  const data = pgDataDir(state);
  const run = path.join(base, 'run');
  const logFile = path.join(base, 'postgres.log');
  await fsp.mkdir(run, { recursive: true });
  if (isRoot()) chownToPostgres(base, run);
  if (!fs.existsSync(path.join(data, 'PG_VERSION'))) {
    const r = runPgTool(state, 'initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C']);
    if (r.status !== 0) throw new StackError(`initdb failed:\n${r.output}`);
    await fsp.appendFile(path.join(data, 'postgresql.conf'), "\ninclude_if_exists = 'riskmon.conf'\n");
  }
  // Rewritten on every start so a changed port or setting takes effect on an existing cluster.
  const conf = [
    `port = ${st.port}`,
    `listen_addresses = '127.0.0.1'`,
    `unix_socket_directories = '${socketDir(run)}'`,
    'wal_level = logical',
    'max_replication_slots = 32',
    'max_wal_senders = 32',
    'max_connections = 300',
    'wal_sender_timeout = 60s',
    "shared_buffers = '256MB'",
    "max_wal_size = '2GB'",
    "log_min_messages = 'warning'",
    '',
  ].join('\n');
  await writeAsPg(path.join(data, 'riskmon.conf'), conf);
  await writeAsPg(
    path.join(data, 'pg_hba.conf'),
    ['local all all trust', 'host all all 127.0.0.1/32 trust', 'local replication all trust', 'host replication all 127.0.0.1/32 trust', ''].join('\n'),
  );
  const r = runPgTool(state, 'pg_ctl', ['start', '-D', data, '-l', logFile, '-w', '-t', String(TIMEOUT_MS.pg / 1000)]);
  if (r.status !== 0) throw new StackError(`PostgreSQL did not start:\n${r.output}\n--- ${logFile} (tail) ---\n${tail(logFile)}`);
  const pid = pgPid(state);
  if (!pid) throw new StackError(`PostgreSQL started but ${data}/postmaster.pid is missing`);
  return pid;
}

/** Unix socket paths are limited to ~107 bytes; fall back to /tmp when the data folder is deep. */
export function socketDir(run: string): string {
  return run.length + '/.s.PGSQL.65535'.length < 100 ? run : '/tmp';
}

export async function writeAsPg(file: string, content: string): Promise<void> {
  await fsp.writeFile(file, content);
  if (isRoot()) chownToPostgres(file);
}

export function chownToPostgres(...paths: string[]): void {
  const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  for (const p of paths) fs.chownSync(p, uid, gid);
}

export function ensurePostgresUser(): void {
  if (spawnSync('id', ['-u', 'postgres']).status === 0) return;
  const r = spawnSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres'], { encoding: 'utf8' });
  if (r.status !== 0) throw new StackError(`cannot create the postgres OS user (PostgreSQL refuses to run as root): ${r.stderr}`);
}

export async function ensureDatabases(dbUrls: string[]): Promise<void> {
  for (const url of dbUrls) {
    const name = new URL(url).pathname.slice(1);
    const client = new pg.Client({ connectionString: withDatabase(url, 'postgres') });
    await client.connect();
    try {
      const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
      if (!rowCount) await client.query(`CREATE DATABASE "${name.replaceAll('"', '""')}"`);
    } finally {
      await client.end();
    }
  }
}

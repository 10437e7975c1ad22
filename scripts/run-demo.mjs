#!/usr/bin/env node
// `npm run demo` on a fresh clone: runs on Node 24 (fetched once from the npm registry by scripts/node-runtime.mjs
// when the machine's Node is older), installs the locked dependencies first when they are missing (the demo runs
// from the TypeScript sources through tsx, a dev dependency), then hands over to scripts/demo.ts. Signals reach
// the demo, which stops its components.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_MAJOR, nodeBinDir } from './node-runtime.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
if (Number(process.versions.node.split('.')[0]) < NODE_MAJOR) {
  let bin;
  try { bin = nodeBinDir(); } catch (err) { console.error(`[demo] ${err.message}`); process.exit(1); }
  console.log(`[demo] running on Node ${NODE_MAJOR} from ${bin}`);
  const env = { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}` };
  const again = spawn(path.join(bin, 'node'), [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { cwd: root, stdio: 'inherit', env });
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => again.kill(sig));
  again.on('exit', (code, sig) => { process.exit(code ?? (sig ? 1 : 0)); });
} else {
  const tsx = path.join(root, 'node_modules', '.bin', 'tsx');
  if (!existsSync(tsx)) {
    console.log('[demo] first run: installing dependencies (npm ci) …');
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const r = spawnSync(npm, ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
    if (r.status !== 0) {
      console.error(`[demo] npm ci failed (exit ${r.status ?? r.error?.message}); fix that, then run npm run demo again`);
      process.exit(1);
    }
  }
  const child = spawn(tsx, [path.join(root, 'scripts', 'demo.ts'), ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, sig) => { process.exitCode = code ?? (sig ? 1 : 0); });
}

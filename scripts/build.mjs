#!/usr/bin/env node
/**
 * `npm run build`: the production build that the `riskmon` bin, the image and compose run with plain `node`.
 *   1. the dashboard (Vite) into web/dist;
 *   2. tsc (tsconfig.build.json) into dist/, rewriting the sources' relative `.ts` imports to `.js`;
 *   3. the files the compiled code reads at run time beside it: sql/ (migrations, read from dist/lib/../sql),
 *      the Lua scripts (read from beside their module) and web/dist (served from dist/api/../web/dist).
 * dist/ is emptied first so a module deleted from the sources cannot linger in the build.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const bin = (name) => path.join(root, 'node_modules', '.bin', name);

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    process.stderr.write(`build: ${path.basename(cmd)} ${args.join(' ')} failed${r.error ? ` (${r.error.message})` : ''}\n`);
    process.exit(r.status ?? 1);
  }
}

if (!existsSync(bin('tsc')) || !existsSync(bin('vite'))) {
  process.stderr.write('build: typescript and vite are dev dependencies: run `npm ci` first\n');
  process.exit(2);
}
rmSync(dist, { recursive: true, force: true });
if (!process.argv.includes('--no-web')) run(bin('vite'), ['build', 'web', '--logLevel', 'warn']);
run(bin('tsc'), ['-p', 'tsconfig.build.json']);
cpSync(path.join(root, 'sql'), path.join(dist, 'sql'), { recursive: true, filter: (f) => !/\.(ts|md)$/.test(f) });
// Every Lua script beside its module (the bucket store's apply script), wherever the sources keep it.
for (const folder of ['lib', 'cdc', 'aggregator', 'alerting', 'api']) {
  for (const f of readdirSync(path.join(root, folder), { recursive: true }).map(String).filter((n) => n.endsWith('.lua'))) {
    cpSync(path.join(root, folder, f), path.join(dist, folder, f));
  }
}
if (existsSync(path.join(root, 'web', 'dist', 'index.html'))) cpSync(path.join(root, 'web', 'dist'), path.join(dist, 'web', 'dist'), { recursive: true });
process.stdout.write(`build: ${path.relative(process.cwd(), dist) || '.'}/ ready (the riskmon bin runs dist/scripts/cli.js)\n`);

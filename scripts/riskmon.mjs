#!/usr/bin/env node
// The `riskmon` command. Production runs the compiled JavaScript (`npm run build` → dist/) with plain node: that is
// what the image and compose run. A checkout that was never built falls back to the TypeScript sources through
// tsx (a dev dependency), so `npx riskmon` works right after `npm ci`.
import { existsSync } from 'node:fs';

if (existsSync(new URL('../dist/scripts/cli.js', import.meta.url))) {
  const { main } = await import('../dist/scripts/cli.js');
  process.exitCode = await main(process.argv.slice(2));
} else {
  await import('./riskmon-dev.mjs');
}

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
// Once the command is done, the process ends even if a library left a socket open: kafkajs can finish opening a
// broker connection after its client was disconnected (a stop during a metadata refresh or produce on several
// brokers), and that socket would keep a stopped cdc alive forever. The timer itself keeps nothing alive.
setTimeout(() => process.exit(), 2_000).unref();

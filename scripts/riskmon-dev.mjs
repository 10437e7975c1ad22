#!/usr/bin/env node
// `riskmon` from the TypeScript sources through tsx (development: the tests, the demo and the soak start components
// this way through lib/launch.ts, so they never run a stale dist/). Production runs the compiled build.
let register;
try {
  ({ register } = await import('tsx/esm/api'));
} catch {
  process.stderr.write('riskmon: no compiled build (dist/) and no tsx to run the sources: run `npm ci && npm run build`\n');
  process.exit(2);
}
register();
const { main } = await import('./cli.ts');
process.exitCode = await main(process.argv.slice(2));

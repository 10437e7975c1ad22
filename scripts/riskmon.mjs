#!/usr/bin/env node
// The `riskmon` command: registers tsx so the TypeScript sources run as they are, then hands over to lib/cli.ts.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../lib/cli.ts');
process.exitCode = await main(process.argv.slice(2));

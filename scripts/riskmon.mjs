#!/usr/bin/env node
// The `riskmon` command: registers tsx so the TypeScript sources run as they are, then hands over to scripts/cli.ts.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('./cli.ts');
process.exitCode = await main(process.argv.slice(2));
// Once the command is done, the process ends even if a library left a socket open: kafkajs can finish opening a
// broker connection after its client was disconnected (a stop during a metadata refresh or produce on several
// brokers), and that socket would keep a stopped cdc alive forever. The timer itself keeps nothing alive.
setTimeout(() => process.exit(), 2_000).unref();

#!/usr/bin/env node
// The image's HEALTHCHECK (plain node, no curl in slim images). It looks at the container's main process to see
// which component runs: `api` and `all` are healthy when GET /ready answers 200 (the risk store, the source and
// Redis answer); `cdc`, `aggregate` and `alerting` when their /metrics port answers (RISKMON_METRICS_PORT, if set);
// one-shot commands (migrate, generate, replay, status) are healthy while they run.
import { readFileSync } from 'node:fs';

function command() {
  try {
    const argv = readFileSync('/proc/1/cmdline', 'utf8').split('\0').filter(Boolean);
    const bin = argv.findIndex((a) => /(^|\/)riskmon(\.mjs)?$/.test(a));
    return bin >= 0 ? argv[bin + 1] : undefined;
  } catch {
    return undefined;
  }
}

async function probe(url) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(4000) });
    if (res.ok) return 0;
    process.stderr.write(`${url}: ${res.status} ${await res.text()}\n`);
  } catch (err) {
    process.stderr.write(`${url}: ${err.cause?.message ?? err.message}\n`);
  }
  return 1;
}

const cmd = process.argv[2] ?? command();
const env = process.env;
if (cmd === 'api' || cmd === 'all') {
  process.exitCode = await probe(`http://127.0.0.1:${env.RISKMON_HTTP_PORT || 8080}/ready`);
} else if (['cdc', 'aggregate', 'alerting'].includes(cmd) && Number(env.RISKMON_METRICS_PORT)) {
  process.exitCode = await probe(`http://127.0.0.1:${env.RISKMON_METRICS_PORT}/metrics`);
}

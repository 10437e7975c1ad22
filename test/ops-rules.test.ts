/**
 * The Prometheus alert rules of ops/ (docs/operations.md "Alert rules"): `promtool check rules` (syntax, templates) and
 * `promtool test rules` (ops/alerts.test.yml: each rule fires on its series after its `for`, and stays quiet on the
 * harmless variant). promtool comes with Debian's `prometheus` package (.ci/run installs it); without it the test
 * is skipped and says so.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const OPS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'ops');
const version = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
const missing = version.error ? 'promtool is not installed (apt-get install prometheus)' : null;
if (missing) console.warn(`[ops] promtool tests skipped: ${missing}`);

const promtool = (...args: string[]) => spawnSync('promtool', args, { cwd: OPS, encoding: 'utf8' });

describe.skipIf(missing !== null)('ops/ alert rules', () => {
  it('pass promtool check rules', () => {
    const r = promtool('check', 'rules', 'alerts.yml');
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/SUCCESS: 10 rules found/);
  });

  it('pass their unit tests (promtool test rules)', () => {
    const r = promtool('test', 'rules', 'alerts.test.yml');
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    expect(r.stdout).toContain('SUCCESS');
  });

  it('the scrape configuration of the monitoring profile is valid and names every component', () => {
    // check config resolves rule_files relative to the file; the compose path /etc/prometheus/alerts.yml is absent
    // here, so only the syntax is checked (--syntax-only) and the jobs are read from the file.
    const r = promtool('check', 'config', '--syntax-only', 'prometheus.yml');
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    const jobs = [...readFileSync(path.join(OPS, 'prometheus.yml'), 'utf8').matchAll(/job_name: (\S+)/g)].map((m) => m[1]).sort();
    expect(jobs).toEqual(['riskmon-aggregator', 'riskmon-alerting', 'riskmon-api', 'riskmon-cdc']);
  });
});

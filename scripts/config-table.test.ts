import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BEGIN, CONFIG_DOC, configTable, END, generatedPart, withTable } from './config-table.ts';
import { connectionSpec, commonSpec, type Option } from '../lib/config.ts';
import { cdcSpec } from '../cdc/index.ts';
import { aggregatorSpec } from '../aggregator/index.ts';
import { alertingSpec } from '../alerting/index.ts';
import { apiSpec } from '../api/index.ts';

describe('the configuration table of docs/configuration.md', () => {
  it('is the one the option specs print (run `npx tsx scripts/config-table.ts --write` after changing an option)', () => {
    expect(generatedPart(readFileSync(CONFIG_DOC, 'utf8'))).toBe(configTable());
  });

  it('the check itself: a changed row or missing markers are seen', () => {
    const doc = withTable(`# t\n\n${BEGIN}\n${END}\n`, configTable());
    expect(generatedPart(doc)).toBe(configTable());
    expect(generatedPart(doc.replace('`8080`', '`8081`'))).not.toBe(configTable());
    expect(generatedPart('# no markers')).toBeNull();
    expect(configTable()).toMatch(/^\| variable \| used by \| default \| meaning \|/);
    expect(configTable()).toContain('`RISKMON_API_KEYS`');
  });
});

describe('secrets', () => {
  it('every secret-bearing variable (passwords, keys, secrets, database, Redis and webhook URLs) may be given as <name>_FILE', () => {
    const all: Option<unknown>[] = [connectionSpec, commonSpec, cdcSpec, aggregatorSpec, alertingSpec, apiSpec].flatMap((s) => Object.values(s as Record<string, Option<unknown>>));
    const secretShaped = (env: string) => /PASSWORD|_KEYS$|SECRET|(^|_)PG_URL$|^REDIS_URL$|WEBHOOK_URL$/.test(env);
    const shaped = [...new Set(all.filter((o) => secretShaped(o.env)).map((o) => o.env))];
    expect(shaped).toEqual(expect.arrayContaining(['PG_URL', 'RISK_PG_URL', 'REDIS_URL', 'RISKMON_API_KEYS', 'RISKMON_KEY_ID_SECRET', 'RISKMON_SLACK_WEBHOOK_URL', 'KAFKA_SASL_PASSWORD', 'RISKMON_ACTION_WEBHOOK_SECRET']));
    expect(all.filter((o) => secretShaped(o.env) && !o.secret).map((o) => o.env)).toEqual([]);
  });
});

import { describe, expect, it } from 'vitest';
import { ConfigError, readConfig } from '../../lib/config.ts';
import { alertingSpec, checkWebhookConfig } from '../config.ts';

const base = { RISK_PG_URL: 'postgres://x@localhost/r', REDIS_URL: 'redis://localhost:6379' };
const cfg = (env: NodeJS.ProcessEnv) => readConfig(alertingSpec, { ...base, ...env });
const problems = (env: NodeJS.ProcessEnv): string[] => {
  try { checkWebhookConfig(cfg(env)); return []; } catch (err) { return (err as ConfigError).problems; }
};

describe('webhook configuration', () => {
  it('a URL needs its secret; a previous secret needs a current one and differs from it', () => {
    expect(problems({})).toEqual([]);
    expect(problems({ RISKMON_ACTION_WEBHOOK_URL: 'https://settle.example/hooks' })).toEqual([
      expect.stringContaining('RISKMON_ACTION_WEBHOOK_URL is set without RISKMON_ACTION_WEBHOOK_SECRET'),
    ]);
    expect(problems({ RISKMON_ALERT_WEBHOOK_URL: 'https://a.example', RISKMON_ALERT_WEBHOOK_SECRET: 's'.repeat(16) })).toEqual([]);
    expect(problems({ RISKMON_ACTION_WEBHOOK_SECRET_PREVIOUS: 'p'.repeat(16) })).toEqual([expect.stringContaining('without RISKMON_ACTION_WEBHOOK_SECRET')]);
    expect(problems({ RISKMON_ACTION_WEBHOOK_SECRET: 'p'.repeat(16), RISKMON_ACTION_WEBHOOK_SECRET_PREVIOUS: 'p'.repeat(16) })).toEqual([expect.stringContaining('equals')]);
  });

  it('a short secret is refused without showing it; a non-http URL is refused', () => {
    expect(() => cfg({ RISKMON_ACTION_WEBHOOK_SECRET: 'short' })).toThrow(/RISKMON_ACTION_WEBHOOK_SECRET is invalid: too short/);
    expect(() => cfg({ RISKMON_ACTION_WEBHOOK_SECRET: 'short' })).not.toThrow(/"short"/);
    expect(() => cfg({ RISKMON_ALERT_WEBHOOK_URL: 'ftp://x' })).toThrow(/RISKMON_ALERT_WEBHOOK_URL/);
  });
});

import { describe, expect, it } from 'vitest';
import { apiKeys, brokers, ConfigError, int, readConfig, str, timeZone } from './config.ts';

const spec = {
  port: int('RISKMON_HTTP_PORT', 'HTTP port', 8080, 1, 65535),
  tz: timeZone('RISKMON_TZ', 'zone', 'Asia/Seoul'),
  keys: apiKeys('RISKMON_API_KEYS', 'API keys'),
  brokers: brokers('KAFKA_BROKERS', 'Kafka'),
  name: str('RISKMON_NAME', 'a name', 'x'),
};

describe('readConfig', () => {
  it('applies defaults, parses values and freezes the result', () => {
    const c = readConfig(spec, { KAFKA_BROKERS: 'a:9092, b:9093', RISKMON_API_KEYS: 'secret-viewer-0123456789abcdef:viewer,secret-admin-0123456789abcdef:admin' });
    expect(c.port).toBe(8080);
    expect(c.brokers).toEqual(['a:9092', 'b:9093']);
    expect(c.keys).toEqual([{ key: 'secret-viewer-0123456789abcdef', role: 'viewer' }, { key: 'secret-admin-0123456789abcdef', role: 'admin' }]);
    expect(Object.isFrozen(c)).toBe(true);
  });
  it('names every bad or missing variable and what it expects, at once', () => {
    let err: ConfigError | undefined;
    try {
      readConfig(spec, { RISKMON_HTTP_PORT: '80a', RISKMON_TZ: 'Mars/Base', RISKMON_API_KEYS: 'secret-key-0123456789abcdef:root' });
    } catch (e) { err = e as ConfigError; }
    expect(err).toBeInstanceOf(ConfigError);
    expect(err!.problems).toHaveLength(4);
    expect(err!.message).toContain('RISKMON_HTTP_PORT="80a" is invalid: not an integer (expects an integer from 1 to 65535)');
    expect(err!.message).toContain('RISKMON_TZ="Mars/Base" is invalid');
    expect(err!.message).toContain('role "root" is not viewer, analyst or admin');
    expect(err!.message).toContain('KAFKA_BROKERS is required');
  });
});

describe('secrets from files', () => {
  it('X_FILE holds the value of a secret X; both set, or an unreadable file, is an error naming them', async () => {
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const { secret, optStr } = await import('./config.ts');
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rm-secret-')), 'pw');
    fs.writeFileSync(file, 's3cret\n');
    const spec = { pw: secret(optStr('KAFKA_SASL_PASSWORD', 'password')) };
    expect(readConfig(spec, { KAFKA_SASL_PASSWORD_FILE: file }).pw).toBe('s3cret');
    expect(() => readConfig(spec, { KAFKA_SASL_PASSWORD_FILE: file, KAFKA_SASL_PASSWORD: 'x' })).toThrow(/KAFKA_SASL_PASSWORD and KAFKA_SASL_PASSWORD_FILE are both set/);
    expect(() => readConfig(spec, { KAFKA_SASL_PASSWORD_FILE: `${file}.missing` })).toThrow(/KAFKA_SASL_PASSWORD_FILE=".*missing" cannot be read/);
  });
});

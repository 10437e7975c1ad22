import { describe, expect, it } from 'vitest';
import { ConfigError, connections, readConfig } from './config.ts';
import { redisSetupProblem, redisTarget, RespWriter } from './redis.ts';

const cfgOf = (env: NodeJS.ProcessEnv) => readConfig(connections('redisUrl'), env);

describe('redisTarget', () => {
  it('standalone: one URL, user and password from it, rediss:// is TLS, the path is the database', () => {
    expect(redisTarget(cfgOf({ REDIS_URL: 'rediss://app:p%40ss@redis.internal:6380/2' }))).toEqual({
      mode: 'standalone', nodes: [{ host: 'redis.internal', port: 6380 }], tls: true, username: 'app', password: 'p@ss', db: 2,
    });
  });
  it('cluster: every seed node; RISKMON_REDIS_USERNAME/PASSWORD override the URL', () => {
    const t = redisTarget(cfgOf({
      RISKMON_REDIS_MODE: 'cluster', REDIS_URL: 'redis://u:x@10.0.0.1:6379,redis://10.0.0.2:6379', RISKMON_REDIS_USERNAME: 'riskmon', RISKMON_REDIS_PASSWORD: 'secret',
    }));
    expect(t).toMatchObject({ mode: 'cluster', nodes: [{ host: '10.0.0.1', port: 6379 }, { host: '10.0.0.2', port: 6379 }], tls: false, username: 'riskmon', password: 'secret' });
  });
  it('sentinel: the URLs are sentinels (default port 26379), their credentials the sentinels\' own', () => {
    const t = redisTarget(cfgOf({
      RISKMON_REDIS_MODE: 'sentinel', REDIS_URL: 'redis://s:sp@10.0.0.1,redis://10.0.0.2:26380', RISKMON_REDIS_SENTINEL_NAME: 'risk', RISKMON_REDIS_PASSWORD: 'mp',
    }));
    expect(t).toMatchObject({ mode: 'sentinel', nodes: [{ host: '10.0.0.1', port: 26379 }, { host: '10.0.0.2', port: 26380 }], sentinelName: 'risk', sentinelUsername: 's', sentinelPassword: 'sp', password: 'mp' });
    expect(t.username).toBeUndefined();
  });
  it('refuses several URLs in standalone mode and a database number on a cluster, naming the variables', () => {
    expect(() => redisTarget(cfgOf({ REDIS_URL: 'redis://a:1,redis://b:2' }))).toThrow(/RISKMON_REDIS_MODE=standalone/);
    expect(() => redisTarget(cfgOf({ RISKMON_REDIS_MODE: 'cluster', REDIS_URL: 'redis://a:1/3' }))).toThrow(ConfigError);
  });
  it('REDIS_URL: mixed TLS and other protocols are refused; the value is never echoed (it may hold a password)', () => {
    expect(() => cfgOf({ REDIS_URL: 'redis://a:1,rediss://b:2', RISKMON_REDIS_MODE: 'cluster' })).toThrow(/mixes redis:\/\/ and rediss:\/\//);
    let msg = '';
    try { cfgOf({ REDIS_URL: 'http://user:hunter2@a:1' }); } catch (e) { msg = (e as Error).message; }
    expect(msg).toMatch(/REDIS_URL is invalid: entry 1: protocol http: not allowed/);
    expect(msg).not.toContain('hunter2');
  });
});

describe('redisSetupProblem', () => {
  it('names the setting for a refused password and an untrusted certificate; an outage is no setup problem', () => {
    expect(redisSetupProblem(new Error('WRONGPASS invalid username-password pair or user is disabled.'), { redisCaFile: '', redisMode: 'standalone' }))
      .toMatch(/RISKMON_REDIS_PASSWORD/);
    expect(redisSetupProblem(Object.assign(new Error('self-signed certificate in certificate chain'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' }), { redisCaFile: '', redisMode: 'standalone' }))
      .toMatch(/RISKMON_REDIS_CA_FILE/);
    expect(redisSetupProblem(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), { redisCaFile: '', redisMode: 'standalone' })).toBeNull();
  });
});

describe('RespWriter', () => {
  it('writes RESP bulk strings: integers as digits, strings as UTF-8, one argument per call', () => {
    const w = new RespWriter();
    for (const v of [0, 7, 10, 99, 100, 1000, -5, -10, 2 ** 53 - 1, 123456789012345678901234567890n, -3n]) w.integer(v);
    w.string('héllo').string('42', 'n:').string('');
    const inner = new RespWriter().integer(12);
    w.append(inner);
    expect(inner.count).toBe(0);
    const { bytes, count } = w.take();
    expect(count).toBe(15);
    expect(bytes.toString()).toBe(['0', '7', '10', '99', '100', '1000', '-5', '-10', String(2 ** 53 - 1), '123456789012345678901234567890', '-3', 'héllo', 'n:42', '', '12']
      .map((s) => `$${Buffer.byteLength(s)}\r\n${s}\r\n`).join(''));
    expect(w.count).toBe(0);
  });
});

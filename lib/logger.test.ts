import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { REDACT } from './logger.ts';

describe('logger', () => {
  it('redacts secret-shaped fields wherever an object carries them', () => {
    const lines: string[] = [];
    const log = pino({ redact: { paths: REDACT, censor: '[redacted]' } }, { write: (s: string) => { lines.push(s); } });
    log.info({
      key: 'k-0123456789abcdef012345', token: 't', password: 'p', cfg: { apiKeys: [{ key: 'x' }], pgUrl: 'postgres://u:pw@h/db' },
      req: { headers: { authorization: 'Bearer secret-key-0123456789abcdef', cookie: 'riskmon_session=abc' } }, config: { password: 'pw2' },
      path: '/api/alerts',
    }, 'hello');
    const out = lines.join('');
    for (const s of ['k-0123456789abcdef012345', 'secret-key-0123456789abcdef', 'riskmon_session=abc', 'postgres://u:pw@h/db', 'pw2', '"x"']) expect(out).not.toContain(s);
    expect(out).toContain('/api/alerts');
    expect(out).toContain('[redacted]');
  });
});

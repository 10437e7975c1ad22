import { describe, expect, it } from 'vitest';
import { pgUnavailable } from './pg.ts';

describe('pgUnavailable', () => {
  it('is true for a PostgreSQL that is down or restarting, false for a mistake', () => {
    expect(pgUnavailable(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(pgUnavailable(Object.assign(new Error('the database system is starting up'), { code: '57P03' }))).toBe(true);
    expect(pgUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(pgUnavailable(Object.assign(new Error('password authentication failed for user "x"'), { code: '28P01' }))).toBe(false);
    expect(pgUnavailable(Object.assign(new Error('relation "x" does not exist'), { code: '42P01' }))).toBe(false);
    expect(pgUnavailable(null)).toBe(false);
  });
});

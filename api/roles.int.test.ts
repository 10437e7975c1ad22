/**
 * Least privilege in the databases: the API runs as a login role that is only a member of riskmon_risk_rw (risk
 * store) and riskmon_source_directory (source). As that role the API serves its routes and writes the audit trail,
 * but TRUNCATE of the audit table, disabling its trigger, UPDATE and DELETE all fail, and on the source it reads the
 * merchant directory and nothing else. Even the superuser's TRUNCATE is refused by the statement trigger.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../lib/migrate.ts';
import { ADMIN, testApi, VIEWER, type TestApi } from './testing.ts';

let owner: TestApi;
let api: TestApi;
const role = `rm_api_${randomBytes(4).toString('hex')}`;
const password = randomBytes(18).toString('base64url');
let risk: pg.Client;
let source: pg.Client;
const as = (url: string) => { const u = new URL(url); u.username = role; u.password = password; return u.toString(); };

beforeAll(async () => {
  owner = await testApi(); // migrates both databases as the superuser
  await owner.riskPg.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}' IN ROLE riskmon_risk_rw, riskmon_source_directory`);
  await owner.sourcePg.query(`INSERT INTO merchants (merchant_id, name) VALUES (77, 'Hanbit Electronics')`);
  risk = new pg.Client({ connectionString: as(owner.env.RISK_PG_URL!) });
  source = new pg.Client({ connectionString: as(owner.env.PG_URL!) });
  await Promise.all([risk.connect(), source.connect()]);
  api = await testApi({ PG_URL: as(owner.env.PG_URL!), RISK_PG_URL: as(owner.env.RISK_PG_URL!), RISKMON_REDIS_PREFIX: owner.env.RISKMON_REDIS_PREFIX });
});
afterAll(async () => {
  await Promise.allSettled([risk?.end(), source?.end(), api?.close()]);
  await owner?.riskPg.query(`DROP ROLE IF EXISTS ${role}`).catch(() => {});
  await owner?.close();
});

const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: { code?: string }) => e.code ?? 'error');

describe('database roles', () => {
  it('a service\'s role runs `migrate` at start on an up-to-date risk store (the alerting does) without needing CREATE', async () => {
    expect(await migrate(as(owner.env.RISK_PG_URL!), 'risk')).toEqual([]);
    expect(await code(risk.query('CREATE TABLE roles_probe (x int)'))).toBe('42501');
  });

  it('as the API\'s role, TRUNCATE of the audit table fails, and so do disabling its trigger, UPDATE and DELETE', async () => {
    const r = await api.app.inject({ method: 'POST', url: '/api/silences', headers: { authorization: `Bearer ${ADMIN}` }, payload: { merchantId: '77', minutes: 30, reason: 'roles test' } });
    expect(r.statusCode).toBe(201); // the API's writes (and their audit entries) work as this role
    expect((await risk.query('SELECT count(*)::int AS n FROM audit_log')).rows[0].n).toBeGreaterThan(0);
    expect(await code(risk.query('TRUNCATE audit_log'))).toBe('42501');
    expect(await code(risk.query('ALTER TABLE audit_log DISABLE TRIGGER ALL'))).toBe('42501');
    expect(await code(risk.query('ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_truncate'))).toBe('42501');
    expect(await code(risk.query(`UPDATE audit_log SET actor = 'someone else'`))).toBe('42501');
    expect(await code(risk.query('DELETE FROM audit_log'))).toBe('42501');
    expect(await code(risk.query('DROP TABLE audit_log'))).toBe('42501');
    expect((await risk.query('SELECT count(*)::int AS n FROM audit_log')).rows[0].n).toBeGreaterThan(0);
    // the owner of everything else (the superuser here) is refused TRUNCATE by the trigger as well
    expect(await code(owner.riskPg.query('TRUNCATE audit_log'))).toBe('42501');
  });

  it('on the source, the API\'s role reads the merchant directory and nothing else', async () => {
    expect((await source.query('SELECT name FROM merchants WHERE merchant_id = 77')).rows).toEqual([{ name: 'Hanbit Electronics' }]);
    expect(await code(source.query('SELECT * FROM payments LIMIT 1'))).toBe('42501');
    expect(await code(source.query('SELECT * FROM payment_cancels LIMIT 1'))).toBe('42501');
    expect(await code(source.query(`INSERT INTO merchants (merchant_id, name) VALUES (78, 'x')`))).toBe('42501');
    const search = await api.app.inject({ method: 'GET', url: '/api/merchants?q=hanbit', headers: { authorization: `Bearer ${VIEWER}` } });
    expect(search.statusCode).toBe(200);
    expect(JSON.stringify(search.json())).toContain('Hanbit');
  });
});

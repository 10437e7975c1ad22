/**
 * /docs: Swagger UI and the OpenAPI document behind it. The document must be valid OpenAPI (checked by a real
 * validator, @seriousme/openapi-schema-validator, against the official JSON schema of its version) and describe
 * every HTTP route the api registers, with its method; the only routes left out are the documentation's own, the
 * WebSocket upgrade (/ws, which OpenAPI 3.0 cannot describe; docs/contracts.md) and the dashboard's static files.
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApi, type TestApi } from './testing.ts';

let t: TestApi;
beforeAll(async () => { t = await testApi(); });
afterAll(async () => { await t?.close(); });

const UNDOCUMENTED = [/^\/docs(\/|$)/, /^\/ws$/, /^\/$/, /^\/\*$/];
/** Fastify's `/api/merchants/:id/series` is OpenAPI's `/api/merchants/{id}/series`. */
const openapiPath = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

describe('/docs', () => {
  it('serves Swagger UI without a key', async () => {
    const page = await t.app.inject({ method: 'GET', url: '/docs' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.body).toMatch(/swagger-ui/i);
    const init = await t.app.inject({ method: 'GET', url: '/docs/static/swagger-initializer.js' });
    expect(init.statusCode).toBe(200);
    expect(init.body).toContain('./json'); // the UI loads the document below
  });

  it('serves a valid OpenAPI document at /docs/json', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    const result = await new Validator().validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(doc.openapi).toMatch(/^3\./);
  });

  it('describes every route the api registers, with its method', async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/docs/json' })).json() as { paths: Record<string, Record<string, unknown>> };
    const documented = new Set(Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`)));
    const routes = t.routes.filter((r) => !UNDOCUMENTED.some((re) => re.test(r.url)));
    expect(routes.length).toBeGreaterThan(10);
    const missing = routes.map((r) => `${r.method} ${openapiPath(r.url)}`).filter((r) => !documented.has(r));
    expect(missing).toEqual([]);
    // Nothing hidden by accident: the only undocumented routes are the ones named above.
    expect(t.routes.filter((r) => !r.documented && !UNDOCUMENTED.some((re) => re.test(r.url)))).toEqual([]);
    for (const p of ['/health', '/ready', '/metrics', '/api/alerts', '/api/merchants/{id}/series']) expect(doc.paths).toHaveProperty([p]);
  });
});

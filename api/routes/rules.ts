/**
 * Rules as versioned data, and backtests (docs/contracts.md, "Rules and backtests"):
 *
 * - GET /api/rules: the active version, every version, the shadow version and the period a backtest can cover;
 *   GET /api/rules/:version: one version's config.
 * - POST /api/rules (admin): a draft; a wrong value is a 400 whose `field` is its path in the config (`config.…`).
 * - POST /api/rules/:version/activate (admin): the evaluator uses it from its next closed minute.
 * - POST /api/rules/:version/shadow, DELETE /api/rules/shadow (admin): the shadow version; GET /api/rules/shadow
 *   with its would-be alerts.
 * - POST /api/backtests (analyst): queues a backtest of a version or an unsaved config over [from, to) → 202 {id};
 *   GET /api/backtests/:id, GET /api/backtests, POST /api/backtests/:id/cancel (analyst), GET /api/backtests/period.
 *
 * Every write is recorded in the audit trail in the same transaction (audit.ts).
 */
import type { FastifyInstance } from 'fastify';
import { BacktestRequestError, backtestablePeriod, checkPeriod, parseRules, RulesError, type RulesConfig } from '../../alerting/index.ts';
import {
  activate, activeRules, cancelBacktest, createDraft, currentShadow, getBacktest, getVersion, listBacktests, listVersions, openBacktestsOf, queueBacktest,
  shadowAlerts, startShadow, stopShadow,
} from '../../alerting/risk-store/index.ts';
import { actorOf, audited } from '../audit.ts';
import type { ApiDeps } from '../deps.ts';
import { ApiError, badRequest } from '../errors.ts';
import {
  ActivatedBody, BacktestBody, BacktestCreate, BacktestListBody, IdBody, BacktestPeriodBody, errorResponses, IdParams, RuleDraftBody, RuleDraftCreate, RulesBody,
  RuleVersionBody, ShadowBody, VersionParams,
} from '../schemas.ts';

const isoOrNull = (d: Date | null) => (d ? d.toISOString() : null);

/** A RulesError as a 400 naming the first wrong path (`config.cancel_rate_spike.multiplier`), with every problem. */
function rulesProblem(err: RulesError): ApiError {
  const path = err.paths[0];
  return badRequest(path ? `config.${path}` : 'config', err.message);
}

export function ruleRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const db = deps.riskPg;
  // The alerting process rebuilds minutes older than the minute tier from the topic (docs/analysts.md "Tuning a rule").
  const period = async (windowMinutes: number) => backtestablePeriod(deps.reader, { now: deps.now(), allowedLatenessMs: deps.cfg.allowedLatenessMs, windowMinutes, rebuild: true });

  app.get('/api/rules', {
    schema: { summary: 'The active rules version, every version, the shadow version, the period a backtest can cover', tags: ['rules'], response: { 200: RulesBody, ...errorResponses } },
  }, async () => {
    const [a, versions, shadow] = await Promise.all([activeRules(db), listVersions(db), currentShadow(db)]);
    const p = await period(a?.config.windowMinutes ?? 60);
    return {
      active: a ? { version: a.version, config: a.config, activatedAt: a.activatedAt.toISOString(), activatedBy: a.activatedBy } : null,
      versions: versions.map((v) => ({
        version: v.version, note: v.note, createdAt: v.createdAt.toISOString(), createdBy: v.createdBy,
        activatedAt: isoOrNull(v.activatedAt), activatedBy: v.activatedBy, active: v.active,
      })),
      shadow: shadow ? { version: shadow.version, startedAt: shadow.startedAt.toISOString(), startedBy: shadow.startedBy, firstMinute: isoOrNull(shadow.firstMinute), lastMinute: isoOrNull(shadow.lastMinute) } : null,
      backtestPeriod: { from: new Date(p.from).toISOString(), to: new Date(p.to).toISOString(), limitedBy: p.limitedBy },
    };
  });

  app.get<{ Params: { version: string } }>('/api/rules/:version', {
    schema: { summary: "One version's config", tags: ['rules'], params: VersionParams, response: { 200: RuleVersionBody, ...errorResponses } },
  }, async (req) => {
    const c = await getVersion(db, req.params.version);
    if (!c) throw new ApiError('not_found', `rules version ${req.params.version} does not exist`);
    return { version: req.params.version, config: c };
  });

  app.post<{ Body: RuleDraftCreate }>('/api/rules', {
    config: { role: 'admin' },
    schema: {
      summary: 'Store a draft rules version (admin)', description: 'config has the shape of RISKMON_RULES (defaults fill what it leaves out); a wrong value is a 400 naming its path.',
      tags: ['rules'], body: RuleDraftCreate, response: { 201: RuleDraftBody, ...errorResponses },
    },
  }, async (req, reply) => {
    try {
      const d = await audited(db, req, (r: { version: string }) => ({ action: 'rules.create', target: `rules:${r.version}`, detail: { note: req.body.note ?? '', config: req.body.config } }),
        (c) => createDraft(c, req.body.config, req.body.note ?? '', actorOf(req)));
      return reply.code(201).send({ version: d.version });
    } catch (err) {
      if (err instanceof RulesError) throw rulesProblem(err);
      throw err;
    }
  });

  app.post<{ Params: { version: string } }>('/api/rules/:version/activate', {
    config: { role: 'admin' },
    schema: {
      summary: 'Activate a rules version (admin)', description: 'The evaluator uses it from its next closed minute, without a restart.',
      tags: ['rules'], params: VersionParams, response: { 200: ActivatedBody, ...errorResponses },
    },
  }, async (req) => {
    const v = req.params.version;
    const r = await audited(db, req, { action: 'rules.activate', target: `rules:${v}` }, async (c) => {
      const a = await activate(c, v, actorOf(req));
      if (!a) throw new ApiError('not_found', `rules version ${v} does not exist`);
      return a;
    });
    return { version: v, activatedAt: r.activatedAt.toISOString(), activatedBy: actorOf(req) };
  });

  app.get('/api/rules/shadow', {
    schema: { summary: "The shadow version and its would-be alerts (never sent)", tags: ['rules'], response: { 200: ShadowBody, ...errorResponses } },
  }, async () => {
    const s = await currentShadow(db);
    if (!s) return { shadow: null, alerts: [] };
    return {
      shadow: { version: s.version, startedAt: s.startedAt.toISOString(), startedBy: s.startedBy, firstMinute: isoOrNull(s.firstMinute), lastMinute: isoOrNull(s.lastMinute) },
      alerts: await shadowAlerts(db, s.id),
    };
  });

  app.post<{ Params: { version: string } }>('/api/rules/:version/shadow', {
    config: { role: 'admin' },
    schema: { summary: 'Evaluate a version beside the active one on live minutes, storing its would-be alerts (admin)', tags: ['rules'], params: VersionParams, response: { 200: ShadowBody, ...errorResponses } },
  }, async (req) => {
    const v = req.params.version;
    await audited(db, req, { action: 'rules.shadow.start', target: `rules:${v}` }, async (c) => {
      if (!(await startShadow(c, v, actorOf(req)))) throw new ApiError('not_found', `rules version ${v} does not exist`);
    });
    const s = (await currentShadow(db))!;
    return { shadow: { version: s.version, startedAt: s.startedAt.toISOString(), startedBy: s.startedBy, firstMinute: null, lastMinute: null }, alerts: [] };
  });

  app.delete('/api/rules/shadow', {
    config: { role: 'admin' },
    schema: { summary: 'Stop the shadow version (admin)', tags: ['rules'], response: { 204: { type: 'null' }, ...errorResponses } },
  }, async (req, reply) => {
    await audited(db, req, { action: 'rules.shadow.stop', target: 'rules:shadow' }, async (c) => {
      if (!(await stopShadow(c, actorOf(req)))) throw new ApiError('not_found', 'no shadow version is running');
    });
    return reply.code(204).send();
  });

  app.get('/api/backtests/period', {
    schema: { summary: 'The period a backtest can cover now', tags: ['backtests'], response: { 200: BacktestPeriodBody, ...errorResponses } },
  }, async () => {
    const a = await activeRules(db);
    const p = await period(a?.config.windowMinutes ?? 60);
    return { from: new Date(p.from).toISOString(), to: new Date(p.to).toISOString(), limitedBy: p.limitedBy };
  });

  app.post<{ Body: BacktestCreate }>('/api/backtests', {
    config: { role: 'analyst' },
    schema: {
      summary: 'Start a backtest of a version or an unsaved config over [from, to) (analyst)',
      description: 'Every closed minute of the period, with the live code; nothing is sent or changed live. A period outside what can be backtested is a 400 that says which period is possible.',
      tags: ['backtests'], body: BacktestCreate, response: { 202: IdBody, ...errorResponses, 429: errorResponses[400] },
    },
  }, async (req, reply) => {
    const b = req.body;
    if ((b.config === undefined) === (b.version === undefined)) throw badRequest('config', 'give either config (an unsaved rules config) or version (a stored one)');
    let config: RulesConfig;
    if (b.version !== undefined) {
      const c = await getVersion(db, b.version);
      if (!c) throw badRequest('version', `rules version ${b.version} does not exist (GET /api/rules lists them)`);
      config = c;
    } else {
      try { config = parseRules(b.config); } catch (err) { if (err instanceof RulesError) throw rulesProblem(err); throw err; }
    }
    let from: number, to: number;
    try {
      ({ from, to } = checkPeriod(b.from, b.to, await period(config.windowMinutes)));
    } catch (err) {
      if (err instanceof BacktestRequestError) throw badRequest(err.field, err.message);
      throw err;
    }
    const id = await audited(db, req, (i: string) => ({
      action: 'backtest.start', target: `backtest:${i}`,
      detail: { version: b.version ?? null, ruleVersion: config.version, from: new Date(from).toISOString(), to: new Date(to).toISOString() },
    }), async (c) => {
      // at most RISKMON_BACKTEST_MAX_QUEUED open backtests per caller (counted under a lock on the caller)
      const actor = actorOf(req);
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`riskmon backtests of ${actor}`]);
      const open = await openBacktestsOf(c, actor);
      if (open >= deps.cfg.backtestMaxQueued) throw new ApiError('rate_limited', `${actor} has ${open} backtests queued or running (at most ${deps.cfg.backtestMaxQueued}); wait for one to finish or cancel one`);
      return queueBacktest(c, { config, version: b.version ?? null, from, to, actor });
    });
    return reply.code(202).send({ id });
  });

  app.get('/api/backtests', {
    schema: { summary: 'Recent backtests (without their results)', tags: ['backtests'], response: { 200: BacktestListBody, ...errorResponses } },
  }, async () => ({ items: await listBacktests(db) }));

  app.get<{ Params: { id: string } }>('/api/backtests/:id', {
    schema: { summary: 'A backtest: status, progress, and when done its alerts, summary per rule, difference with live, dispositions matched', tags: ['backtests'], params: IdParams, response: { 200: BacktestBody, ...errorResponses } },
  }, async (req) => {
    const j = await getBacktest(db, req.params.id);
    if (!j) throw new ApiError('not_found', `backtest ${req.params.id} does not exist`);
    const { result, ...rest } = j;
    return {
      ...rest,
      alerts: result?.alerts ?? [], summary: result?.summary ?? null, vsLive: result?.vsLive ?? null, quality: result?.quality ?? null,
      liveQuality: result?.liveQuality ?? null, perDay: result?.perDay ?? [], money: result?.money ?? null, minutes: result?.minutes ?? null,
    };
  });

  app.post<{ Params: { id: string } }>('/api/backtests/:id/cancel', {
    config: { role: 'analyst' },
    schema: { summary: 'Cancel a queued or running backtest (analyst)', tags: ['backtests'], params: IdParams, response: { 200: BacktestBody, ...errorResponses } },
  }, async (req) => {
    const id = req.params.id;
    await audited(db, req, { action: 'backtest.cancel', target: `backtest:${id}` }, async (c) => {
      if (!(await cancelBacktest(c, id, actorOf(req)))) {
        const exists = Boolean(await getBacktest(db, id));
        throw exists ? badRequest('id', `backtest ${id} has finished already`) : new ApiError('not_found', `backtest ${id} does not exist`);
      }
    });
    const j = (await getBacktest(db, id))!;
    const { result: _r, ...rest } = j;
    return { ...rest, alerts: [], summary: null, vsLive: null, quality: null, liveQuality: null, perDay: [], money: null, minutes: null };
  });
}

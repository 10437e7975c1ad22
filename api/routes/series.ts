import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from '../deps.ts';
import { seriesRange } from '../range.ts';
import { pointBody } from '../points.ts';
import { errorResponses, MerchantParams, SeriesBody, SeriesQuery } from '../schemas.ts';

export function seriesRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get<{ Params: { id: string }; Querystring: SeriesQuery }>('/api/merchants/:id/series', {
    schema: {
      summary: 'Buckets of one merchant: approvals, cancels and amounts per 1m, 1h or 1d',
      description: 'Empty buckets are omitted. `t` is the bucket start (days start at local midnight in RISKMON_TZ). A range of more than 1,440 buckets is refused with the step to use.',
      tags: ['merchants'], params: MerchantParams, querystring: SeriesQuery, response: { 200: SeriesBody, ...errorResponses },
    },
  }, async (req) => {
    const r = seriesRange(req.query, deps.cfg.tz);
    const points = await deps.reader.series(req.params.id, r.fromMs, r.toMs, r.step);
    return { merchantId: req.params.id, step: r.step, points: points.map(pointBody) };
  });
}

import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from '../deps.ts';
import { errorResponses, StatusBody } from '../schemas.ts';
import { setPipelineStatusSource } from '../metrics.ts';
import { pipelineStatus } from '../status.ts';

export function statusRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const read = () => pipelineStatus({
    sourcePg: deps.sourcePg, riskPg: deps.riskPg, reader: deps.reader, kafkaAdmin: deps.kafkaAdmin,
    slot: deps.cfg.slot, group: deps.cfg.group, topic: deps.cfg.topic,
  }, deps.now());
  setPipelineStatusSource(read);
  app.get('/api/status', {
    schema: { summary: 'Pipeline status: slot lag, consumer lag, watermark, last closed minute', tags: ['pipeline'], response: { 200: StatusBody, ...errorResponses } },
  }, read);
}

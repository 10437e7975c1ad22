import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { ApiDeps } from '../deps.ts';
import { errorResponses } from '../schemas.ts';

const MeBody = Type.Object({ role: Type.String(), name: Type.String({ description: 'the actor recorded for this key' }), tz: Type.String(), maxPoints: Type.Integer() });

/** Who the key is and what the dashboard needs to know (the zone that defines a day). */
export function meRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get('/api/me', {
    schema: { summary: 'The role of the presented key and the server settings the dashboard needs', tags: ['session'], response: { 200: MeBody, ...errorResponses } },
  }, async (req) => ({ role: req.principal!.role, name: req.principal!.name, tz: deps.cfg.tz, maxPoints: 1440 }));
}

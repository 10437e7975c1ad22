/**
 * GET /api/deadletters: how many rows and events riskmon could not read, and why (the latest few), straight from
 * the dead-letter topic — the cdc's and the aggregator's processes keep their own metrics, the topic is what
 * every API instance can see. Both kinds are read by lib/dead-letters.ts.
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { readDeadLetter } from '../../lib/dead-letters.ts';
import { createKafka, TopicReader, type Kafka } from '../../lib/kafka/index.ts';
import type { ApiDeps } from '../deps.ts';
import { errorResponses } from '../schemas.ts';

const DeadLetter = Type.Object({
  at: Type.Union([Type.String({ description: 'when it was written to the dead-letter topic' }), Type.Null()]),
  from: Type.String({ description: 'cdc (a source row) or aggregator (a change event)' }),
  reason: Type.String(),
  where: Type.String({ description: 'source position (lsn/seq, table) or topic/partition/offset of the event' }),
});
export const DeadLettersBody = Type.Object({
  topic: Type.String(),
  count: Type.Union([Type.Integer({ description: 'dead letters the topic retains' }), Type.Null()]),
  latest: Type.Array(DeadLetter, { description: 'newest first' }),
  error: Type.Optional(Type.String()),
});
export type DeadLettersBody = Static<typeof DeadLettersBody>;
type DeadLetter = Static<typeof DeadLetter>;

const Query = Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 100, default: 10 }) });

export async function readDeadLetters(kafka: Kafka, topic: string, limit: number): Promise<DeadLettersBody> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    if (!(await admin.listTopics()).includes(topic)) return { topic, count: 0, latest: [] }; // nothing dead-lettered yet
  } finally {
    await admin.disconnect();
  }
  const reader = await TopicReader.open(kafka, topic);
  try {
    let count = 0;
    const latest: (DeadLetter & { t: number })[] = [];
    for (const [p, { low, high }] of await reader.watermarks()) {
      count += Number(high - low);
      let from = high - BigInt(limit);
      if (from < low) from = low;
      while (from < high) {
        const msgs = (await reader.fetch(p, from)).filter((m) => m.offset < high);
        if (!msgs.length) break;
        for (const m of msgs) latest.push({ ...readDeadLetter(m), t: Number(m.timestamp ?? 0) });
        from = msgs[msgs.length - 1].offset + 1n;
      }
    }
    latest.sort((a, b) => b.t - a.t);
    return { topic, count, latest: latest.slice(0, limit).map(({ t: _t, ...d }) => d) };
  } finally {
    await reader.close();
  }
}

export function deadLetterRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const kafka = createKafka(deps.cfg, { clientId: 'riskmon-api-dlq', retries: 1 });
  // The dashboard polls; one read of the topic every few seconds is plenty.
  let cached: { at: number; limit: number; body: Promise<DeadLettersBody> } | null = null;
  app.get<{ Querystring: Static<typeof Query> }>('/api/deadletters', {
    schema: {
      summary: 'Rows and events riskmon could not read: how many, and the latest reasons', tags: ['pipeline'],
      querystring: Query, response: { 200: DeadLettersBody, ...errorResponses },
    },
  }, async (req) => {
    const { limit } = req.query;
    if (!cached || cached.limit !== limit || performance.now() - cached.at > 3000) {
      const body = readDeadLetters(kafka, deps.cfg.dlqTopic, limit)
        .catch((e): DeadLettersBody => ({ topic: deps.cfg.dlqTopic, count: null, latest: [], error: (e as Error).message }));
      cached = { at: performance.now(), limit, body };
    }
    return cached.body;
  });
}

/**
 * Request and response schemas, written once with TypeBox: Fastify validates requests with them, serializes
 * responses with them, the handlers take their types from them, and @fastify/swagger publishes them at /docs/json (Swagger UI at /docs).
 */
import { ExposureSchema } from '../lib/alert-message.ts';
import { Type, type Static } from '@sinclair/typebox';
import { DISPOSITIONS, HOLD_REASON_MAX, NAME_MAX, NOTE_MAX } from '../alerting/risk-store/index.ts';
import { AlertDetailSchema, AlertSchema, type Alert, type AlertDetail } from '../lib/alert-message.ts';

const MerchantId = Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,64}$', description: 'merchant id', examples: ['42'] });
const Iso = Type.String({ description: 'ISO-8601 time with zone, e.g. 2026-11-21T08:00:00Z' });
const Rule = Type.Union([Type.Literal('cancel_rate_spike'), Type.Literal('volume_drop'), Type.Literal('volume_spike'), Type.String({ pattern: '^composed:[a-z0-9_]{1,40}$' })]);
const Json = Type.Unknown();

export const ErrorBody = Type.Object({
  error: Type.String({ description: 'error code: bad_request, unauthorized, forbidden, not_found, rate_limited, …' }),
  field: Type.Optional(Type.String({ description: 'the request field that is wrong' })),
  message: Type.String(),
}, { $id: 'Error' });

export const MerchantParams = Type.Object({ id: MerchantId });

export const SeriesQuery = Type.Object({
  from: Iso,
  to: Iso,
  step: Type.Union([Type.Literal('1m'), Type.Literal('1h'), Type.Literal('1d')], { default: '1m' }),
});
export type SeriesQuery = Static<typeof SeriesQuery>;

export const PointSchema = Type.Object({
  t: Type.String({ description: 'bucket start' }),
  approvals: Type.Integer(),
  approvedAmount: Type.String({ description: 'KRW, decimal string' }),
  cancels: Type.Integer(),
  canceledAmount: Type.String(),
});
export type PointBody = Static<typeof PointSchema>;

export const SeriesBody = Type.Object({
  merchantId: Type.String(),
  step: Type.String(),
  points: Type.Array(PointSchema),
});

/** A string enum as one JSON-schema `enum`, so a wrong value is one error that lists the allowed values. */
const OneOf = <T extends string>(values: readonly T[], opts: { description?: string; default?: T } = {}) =>
  Type.Unsafe<T>({ type: 'string', enum: [...values], ...opts });
const Name = Type.String({ minLength: 1, maxLength: NAME_MAX, description: 'an analyst name (a key name)' });

export const AlertsQuery = Type.Object({
  merchantId: Type.Optional(MerchantId),
  rule: Type.Optional(Rule),
  state: Type.Optional(Type.Union([Type.Literal('firing'), Type.Literal('resolved')])),
  assignee: Type.Optional(Name),
  acked: Type.Optional(Type.Boolean({ description: 'true: acknowledged alerts only; false: unacknowledged ones' })),
  disposition: Type.Optional(OneOf([...DISPOSITIONS, 'none'], { description: 'none: alerts without a disposition (open)' })),
  from: Type.Optional(Iso),
  to: Type.Optional(Iso),
  limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
  sort: Type.Optional(OneOf(['fired', 'receivable'], { description: "fired (default): newest first, paged by cursor; receivable: the merchants' receivable now, largest first, one page of `limit`" })),
});
export type AlertsQuery = Static<typeof AlertsQuery>;

export { ExposureSchema } from '../lib/alert-message.ts';
export const PayoutsQuery = Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }) });
const PayoutItem = Type.Object({
  id: Type.Union([Type.String(), Type.Null()], { description: "the payout row's id ('' when the mapping names no id column); null for a payout of the D+N schedule" }),
  amount: Type.Union([Type.String(), Type.Null()], { description: 'KRW paid out (decimal string); null for a payout of the D+N schedule' }),
  coversTo: Type.String({ description: 'approvals and cancels with a transaction time before this are settled by it' }),
  paidAt: Type.String(),
  paid: Type.Boolean({ description: 'paidAt ≤ now' }),
});
export const PayoutsBody = Type.Object({
  merchantId: Type.String(),
  settlement: OneOf(['payouts', 'days', 'none'], { description: 'payouts: rows of the mapped payouts table; days: the RISKMON_SETTLEMENT_DAYS schedule; none: nothing is settled' }),
  items: Type.Array(PayoutItem, { description: 'oldest first: the latest `limit` by paidAt, scheduled ones included' }),
});
export const ExposureTopQuery = Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 200, default: 20 }) });
export const ExposureTopBody = Type.Object({
  computedAt: Type.Union([Type.String(), Type.Null()], { description: 'the closed minute whose end the exposures are computed at (null: nobody owes)' }),
  items: Type.Array(Type.Composite([ExposureSchema, Type.Object({ name: Type.Union([Type.String(), Type.Null()]) })])),
});

export { AckSchema, AlertDetailSchema, AlertSchema, DispositionSchema } from '../lib/alert-message.ts';
/** The alert JSON, declared once in lib/alert-message.ts. */
export type AlertBody = Alert;

export type AlertDetailBody = AlertDetail;

export const AckBody = Type.Object({}, { additionalProperties: false });
export const AssignBody = Type.Object({ assignee: Type.Union([Name, Type.Null()], { description: 'null unassigns' }) }, { additionalProperties: false });
export const NoteBody = Type.Object({ text: Type.String({ minLength: 1, maxLength: NOTE_MAX }) }, { additionalProperties: false });
export const DispositionBody = Type.Object({
  disposition: OneOf(DISPOSITIONS),
  note: Type.String({ maxLength: NOTE_MAX, default: '' }),
}, { additionalProperties: false });

export const QualityQuery = Type.Object({ from: Type.Optional(Iso), to: Type.Optional(Iso) });
export const QualityBody = Type.Object({
  from: Type.String(), to: Type.String(),
  items: Type.Array(Type.Object({
    rule: Type.String(), ruleVersion: Type.String(), fired: Type.Integer(), dispositioned: Type.Integer(),
    confirmed: Type.Integer(), falsePositive: Type.Integer(), benign: Type.Integer(),
    precision: Type.Union([Type.Number(), Type.Null()], { description: 'confirmed / (confirmed + falsePositive); null when both are 0' }),
  })),
});

export const AuditQuery = Type.Object({
  from: Type.Optional(Iso),
  to: Type.Optional(Iso),
  actor: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  action: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'e.g. alert.disposition, silence.create' })),
  target: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'e.g. alert:42' })),
  limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
  cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,18}$' })),
});
export type AuditQuery = Static<typeof AuditQuery>;
export const AuditBody = Type.Object({
  items: Type.Array(Type.Object({ id: Type.String(), at: Type.String(), actor: Type.String(), action: Type.String(), target: Type.String(), detail: Json })),
  nextCursor: Type.Union([Type.String(), Type.Null()]),
});

export const AlertsBody = Type.Object({
  items: Type.Array(AlertSchema),
  nextCursor: Type.Union([Type.String(), Type.Null()]),
});

export const MerchantSchema = Type.Object({ merchantId: Type.String(), name: Type.String(), category: Type.String() });
export const SearchQuery = Type.Object({
  q: Type.String({ minLength: 1, maxLength: 100, description: 'merchant id or part of its name' }),
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
});
export const SearchBody = Type.Object({ items: Type.Array(MerchantSchema) });

export const EvaluationSchema = Type.Object({
  rule: Type.String(),
  minute: Type.String(),
  status: Type.String({ description: 'breach | clear | not_evaluated' }),
  reason: Type.Union([Type.String(), Type.Null()]),
  evidence: Json,
});
export const EvaluationsBody = Type.Object({
  merchantId: Type.String(),
  items: Type.Array(EvaluationSchema),
  note: Type.Union([Type.String(), Type.Null()], { description: 'why there is nothing, when items is empty' }),
});

export const TopQuery = Type.Object({
  by: Type.Union([Type.Literal('cancel_rate'), Type.Literal('volume_drop')], { default: 'cancel_rate' }),
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 10 }),
});
export const TopItem = Type.Object({
  merchantId: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  rule: Type.String(),
  status: Type.String(),
  minute: Type.String(),
  ratio: Type.Union([Type.Number(), Type.Null()], { description: 'cancel rate ÷ baseline, or today ÷ same-time baseline' }),
  evidence: Json,
});
export const TopBody = Type.Object({ by: Type.String(), minute: Type.Union([Type.String(), Type.Null()]), items: Type.Array(TopItem) });

export const SilenceSchema = Type.Object({
  id: Type.String(),
  merchantId: Type.Union([Type.String(), Type.Null()]),
  rule: Type.Union([Type.String(), Type.Null()]),
  startsAt: Type.String(),
  endsAt: Type.String(),
  reason: Type.String(),
  createdBy: Type.String(),
  active: Type.Boolean(),
});
export const SilencesQuery = Type.Object({ all: Type.Boolean({ default: false, description: 'include expired silences' }) });
export const SilencesBody = Type.Object({ items: Type.Array(SilenceSchema) });
export const SilenceCreate = Type.Object({
  merchantId: Type.Optional(MerchantId),
  rule: Type.Optional(Rule),
  startsAt: Type.Optional(Iso),
  endsAt: Type.Optional(Iso),
  minutes: Type.Optional(Type.Integer({ minimum: 1, maximum: 525_600, description: 'length from startsAt (or now); instead of endsAt' })),
  reason: Type.String({ maxLength: 500, default: '' }),
}, { additionalProperties: false });
export type SilenceCreate = Static<typeof SilenceCreate>;
export const IdParams = Type.Object({ id: Type.String({ pattern: '^[0-9]{1,18}$' }) });

export const StatusBody = Type.Object({
  time: Type.String(),
  slot: Type.Object({ name: Type.String(), lagBytes: Type.Union([Type.Number(), Type.Null()]), active: Type.Union([Type.Boolean(), Type.Null()]), error: Type.Optional(Type.String()) }),
  consumer: Type.Object({ group: Type.String(), topic: Type.String(), lag: Type.Union([Type.Number(), Type.Null()]), error: Type.Optional(Type.String()) }),
  watermark: Type.Object({ at: Type.Union([Type.String(), Type.Null()]), behindMs: Type.Union([Type.Number(), Type.Null()]), error: Type.Optional(Type.String()) }),
  evaluator: Type.Object({ lastClosedMinute: Type.Union([Type.String(), Type.Null()]), behindMs: Type.Union([Type.Number(), Type.Null()]), error: Type.Optional(Type.String()) }),
  alerts: Type.Object({ firing: Type.Union([Type.Number(), Type.Null()]), pendingNotifications: Type.Union([Type.Number(), Type.Null()]) }),
  gap: Type.Union([Type.Null(), Type.Object({
    slot: Type.Optional(Type.String()),
    from: Type.Optional(Type.Union([Type.String(), Type.Null()], { description: 'the newest commit time the stream had carried before the slot was lost' })),
    to: Type.Optional(Type.String({ description: 'when the new slot was created' })),
    fix: Type.Optional(Type.String({ description: 'the backfill that closes the gap' })),
    error: Type.Optional(Type.String()),
  })], { description: 'a known gap in the stream (a lost slot created anew) until a backfill covers it; null when there is none' }),
  webhooks: Type.Object({
    pending: Type.Union([Type.Number(), Type.Null()], { description: 'webhook events (payout actions, alert transitions) not yet delivered' }),
    failed: Type.Union([Type.Number(), Type.Null()], { description: 'dead-lettered events: GET /api/webhooks?status=failed' }),
    oldestPendingAt: Type.Union([Type.String(), Type.Null()]),
    error: Type.Optional(Type.String()),
  }),
  backfill: Type.Object({
    state: Type.String({ description: 'running | done | none | unknown (Redis did not answer); while running no merchant is judged, unless the range is rebuilt aside (`aside`, not yet `swapping`)' }),
    aside: Type.Optional(Type.Boolean({ description: 'a range backfill rebuilding its range aside: the live buckets are applied and judged meanwhile' })),
    swapping: Type.Optional(Type.Boolean({ description: 'the range being swapped in, partition by partition: nobody is judged meanwhile' })),
    kind: Type.Optional(Type.String({ description: "initial (the cdc's first start) | range (riskmon backfill)" })),
    from: Type.Optional(Type.String()),
    to: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    progress: Type.Optional(Type.Number({ description: 'share of the time chunks done, 0..1' })),
    rows: Type.Optional(Type.Number()),
    chunksDone: Type.Optional(Type.Number()),
    chunks: Type.Optional(Type.Number()),
    rowsPerSecond: Type.Optional(Type.Union([Type.Number(), Type.Null()])),
    consistentPoint: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    startedAt: Type.Optional(Type.String()),
    finishedAt: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    error: Type.Optional(Type.String()),
  }),
});

export const errorResponses = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody };

// ---- rules as versioned data, and backtests ----
const RulesConfigSchema = Type.Object({}, { additionalProperties: true, description: 'the RISKMON_RULES shape: version, windowMinutes, baselineDays, sameWeekdayWeeks, minSameWeekdays, holidays, cancel_rate_spike, volume_drop, volume_spike, lifecycle, overrides' });
export const VersionParams = Type.Object({ version: Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,64}$', description: 'rules version' }) });
const ShadowInfo = Type.Object({ version: Type.String(), startedAt: Iso, startedBy: Type.String(), firstMinute: Type.Union([Iso, Type.Null()]), lastMinute: Type.Union([Iso, Type.Null()]) });
const PeriodSchema = Type.Object({ from: Iso, to: Iso, limitedBy: Type.String({ description: "'days' (the last 7 days) or 'minute tier' (minute buckets older than that have expired from Redis)" }) });
export const BacktestPeriodBody = PeriodSchema;
export const RulesBody = Type.Object({
  active: Type.Union([Type.Object({ version: Type.String(), config: RulesConfigSchema, activatedAt: Iso, activatedBy: Type.String() }), Type.Null()]),
  versions: Type.Array(Type.Object({
    version: Type.String(), note: Type.String(), createdAt: Iso, createdBy: Type.String(),
    activatedAt: Type.Union([Iso, Type.Null()]), activatedBy: Type.Union([Type.String(), Type.Null()]), active: Type.Boolean(),
  })),
  shadow: Type.Union([ShadowInfo, Type.Null()]),
  backtestPeriod: PeriodSchema,
});
export const RuleVersionBody = Type.Object({ version: Type.String(), config: RulesConfigSchema });
export const RuleDraftCreate = Type.Object({ config: RulesConfigSchema, note: Type.Optional(Type.String({ maxLength: 2000 })) }, { additionalProperties: false });
export type RuleDraftCreate = Static<typeof RuleDraftCreate>;
export const RuleDraftBody = Type.Object({ version: Type.String() });
export const ActivatedBody = Type.Object({ version: Type.String(), activatedAt: Iso, activatedBy: Type.String() });
export const ShadowBody = Type.Object({
  shadow: Type.Union([ShadowInfo, Type.Null()]),
  alerts: Type.Array(Type.Object({ rule: Type.String(), merchantId: Type.String(), firedAt: Iso, resolvedAt: Type.Union([Iso, Type.Null()]), carried: Type.Boolean(), evidence: Json })),
});
export const BacktestCreate = Type.Object({
  config: Type.Optional(RulesConfigSchema),
  version: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,64}$' })),
  from: Iso,
  to: Iso,
}, { additionalProperties: false });
export type BacktestCreate = Static<typeof BacktestCreate>;
export const IdBody = Type.Object({ id: Type.String() });
const BacktestFields = {
  id: Type.String(),
  status: Type.Union([Type.Literal('queued'), Type.Literal('running'), Type.Literal('done'), Type.Literal('failed')]),
  progress: Type.Number({ description: 'share of the minutes evaluated, 0..1' }),
  from: Iso, to: Iso,
  version: Type.Union([Type.String(), Type.Null()]),
  ruleVersion: Type.String(),
  createdBy: Type.String(), createdAt: Iso,
  startedAt: Type.Union([Iso, Type.Null()]), finishedAt: Type.Union([Iso, Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()]),
};
export const BacktestListBody = Type.Object({ items: Type.Array(Type.Object(BacktestFields)) });
const Krw = Type.String({ pattern: '^-?[0-9]+$', description: 'KRW, exact (decimal string)' });
export const BacktestMoney = Type.Object({
  horizonDays: Type.Integer({ description: 'a hold is followed this many days after its firing, or to the period end' }),
  merchants: Type.Integer({ description: 'merchants held: each at its first alert fired in the period' }),
  receivableAtFiring: Krw, peakReceivable: Krw, withheld: Krw,
  covered: Krw,
  falsePositive: Type.Object({ merchants: Type.Integer(), withheld: Krw }, { description: 'held merchants whose judged alerts were all closed as false positives' }),
  byRule: Type.Record(Type.String(), Type.Object({ alerts: Type.Integer(), receivableAtFiring: Krw, covered: Krw })),
}, { description: 'docs/detection.md "Money in backtests"' });
export const BacktestBody = Type.Object({
  ...BacktestFields,
  alerts: Type.Array(Json, { description: '{rule, merchantId, firedAt, resolvedAt, evidence, renotified, carried, money: {receivableAtFiring, horizonTo, peakReceivable, withheld, covered} | null}' }),
  summary: Json, vsLive: Json, quality: Json, liveQuality: Json,
  perDay: Type.Array(Json),
  money: Type.Union([BacktestMoney, Type.Null()], { description: 'null: no settlement source, or not done' }),
  minutes: Type.Union([Type.Integer(), Type.Null()]),
});

// ---- payout holds and the webhook outbox ----
const Reason = (what: string) => Type.String({ minLength: 1, maxLength: HOLD_REASON_MAX, description: what });
export const HoldCreate = Type.Object({
  reason: Reason('why the payouts are held (sent to the settlement system)'),
  alertId: Type.Optional(Type.String({ pattern: '^[0-9]{1,18}$', description: 'the alert the hold is taken from' })),
}, { additionalProperties: false });
export type HoldCreate = Static<typeof HoldCreate>;
export const HoldRelease = Type.Object({ reason: Reason('why the hold is lifted') }, { additionalProperties: false });
const DeliveryStatusSchema = OneOf(['pending', 'delivered', 'failed', 'discarded'] as const);
export const DeliverySchema = Type.Object({
  id: Type.String({ description: 'the event id: its "id" and idempotency-key, the same on every try' }),
  channel: OneOf(['action', 'alert'] as const),
  type: Type.String({ description: 'payout.hold, payout.release, alert.fired, alert.renotified, alert.resolved' }),
  merchantId: Type.String(),
  holdId: Type.Union([Type.String(), Type.Null()]),
  status: DeliveryStatusSchema,
  attempts: Type.Integer(),
  lastStatus: Type.Union([Type.Integer(), Type.Null()], { description: 'HTTP status of the last attempt (null: no answer)' }),
  reason: Type.Union([Type.String(), Type.Null()], { description: 'why the last attempt failed, or why the event is failed' }),
  createdAt: Iso,
  firstAttemptAt: Type.Union([Iso, Type.Null()]),
  nextAttemptAt: Type.Union([Iso, Type.Null()], { description: 'pending: when it is tried next' }),
  deliveredAt: Type.Union([Iso, Type.Null()]),
  waitingFor: Type.Union([Type.String(), Type.Null()], { description: 'pending behind this earlier event of the same merchant (or alert), which is pending or failed' }),
});
export const HoldSchema = Type.Object({
  id: Type.String(),
  merchantId: Type.String(),
  state: OneOf(['active', 'released'] as const),
  reason: Type.String(),
  alertId: Type.Union([Type.String(), Type.Null()]),
  createdBy: Type.String(),
  createdAt: Iso,
  releasedBy: Type.Union([Type.String(), Type.Null()]),
  releasedAt: Type.Union([Iso, Type.Null()]),
  releaseReason: Type.Union([Type.String(), Type.Null()]),
  delivery: OneOf(['pending', 'delivered', 'failed', 'discarded'] as const, { description: "the latest action's way to the settlement system: pending (delivery), delivered, failed" }),
  actions: Type.Array(DeliverySchema, { description: 'the webhook events of the hold and its release, oldest first' }),
});
export const HoldConflictBody = Type.Object({
  error: Type.Literal('conflict'),
  message: Type.String(),
  hold: HoldSchema,
});
export const HoldsQuery = Type.Object({
  merchantId: Type.Optional(MerchantId),
  state: Type.Optional(OneOf(['active', 'released'] as const)),
  limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
  cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,18}$', description: 'nextCursor of the previous page' })),
});
export type HoldsQuery = Static<typeof HoldsQuery>;
export const HoldsBody = Type.Object({ items: Type.Array(HoldSchema), nextCursor: Type.Union([Type.String(), Type.Null()]) });
export const WebhooksQuery = Type.Object({
  channel: Type.Optional(OneOf(['action', 'alert'] as const)),
  status: Type.Optional(DeliveryStatusSchema),
  merchantId: Type.Optional(MerchantId),
  limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
  cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,18}$', description: 'nextCursor of the previous page' })),
});
export type WebhooksQuery = Static<typeof WebhooksQuery>;
export const WebhooksBody = Type.Object({ items: Type.Array(DeliverySchema), nextCursor: Type.Union([Type.String(), Type.Null()]) });
export const EventParams = Type.Object({ id: Type.String({ pattern: '^[0-9a-f-]{36}$', description: 'webhook event id' }) });

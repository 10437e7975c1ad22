-- Payout holds, and the webhook outbox that carries them (and alert transitions) to other systems.
--
-- A hold is an analyst's decision to stop a merchant's payouts until it is released. At most one hold per merchant is
-- active at a time (the partial unique index below; the API answers 409 naming it).
CREATE TABLE IF NOT EXISTS holds (
  id             bigserial PRIMARY KEY,
  merchant_id    text NOT NULL,
  state          text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'released')),
  reason         text NOT NULL,
  alert_id       bigint REFERENCES alerts ON DELETE SET NULL,  -- the alert it was taken from, if any
  created_by     text NOT NULL,
  created_at     timestamptz NOT NULL,
  released_by    text,
  released_at    timestamptz,
  release_reason text,
  CHECK ((state = 'released') = (released_at IS NOT NULL))
);
CREATE UNIQUE INDEX IF NOT EXISTS holds_one_active ON holds (merchant_id) WHERE state = 'active';
CREATE INDEX IF NOT EXISTS holds_merchant ON holds (merchant_id, id DESC);

-- The webhook outbox: one row per event to deliver, written in the transaction of what caused it (a hold, a release,
-- an alert transition). `body` is the exact JSON sent, fixed when the row is written; `event_id` is its "id" and the
-- idempotency key, the same on every try. Rows of one (channel, order_key) go out in id order: a row waits while an
-- earlier one of its key is pending or failed (the deliverer's claim, alerting/risk-store/webhooks.ts).
CREATE TABLE IF NOT EXISTS webhook_outbox (
  id               bigserial PRIMARY KEY,
  event_id         text NOT NULL UNIQUE,
  channel          text NOT NULL CHECK (channel IN ('action', 'alert')),
  type             text NOT NULL,                 -- payout.hold, payout.release, alert.fired, alert.renotified, alert.resolved
  order_key        text NOT NULL,                 -- action: merchant:<id>; alert: alert:<id>
  merchant_id      text NOT NULL,
  hold_id          bigint REFERENCES holds,
  transition_id    bigint REFERENCES alert_transitions ON DELETE CASCADE,
  body             text NOT NULL,
  status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed', 'discarded')),
  attempts         int NOT NULL DEFAULT 0,
  first_attempt_at timestamptz,
  next_attempt_at  timestamptz NOT NULL DEFAULT '-infinity',
  last_status      int,                           -- HTTP status of the last attempt (NULL: no response)
  reason           text,                          -- why the last attempt failed, or why the row is failed
  created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
  delivered_at     timestamptz
);
CREATE INDEX IF NOT EXISTS webhook_outbox_due ON webhook_outbox (channel, next_attempt_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS webhook_outbox_open ON webhook_outbox (channel, order_key, id) WHERE status IN ('pending', 'failed');
CREATE INDEX IF NOT EXISTS webhook_outbox_hold ON webhook_outbox (hold_id, id) WHERE hold_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS webhook_outbox_merchant ON webhook_outbox (merchant_id, id DESC);
CREATE INDEX IF NOT EXISTS webhook_outbox_failed ON webhook_outbox (id DESC) WHERE status = 'failed';

-- The risk store: alerts, every transition, the Slack outbox, silences, and the latest evaluation per
-- (rule, merchant) so the API can say "not evaluated, because …".
CREATE TABLE IF NOT EXISTS alerts (
  id               bigserial PRIMARY KEY,
  rule             text NOT NULL CHECK (rule IN ('cancel_rate_spike', 'volume_drop')),
  merchant_id      text NOT NULL,
  state            text NOT NULL CHECK (state IN ('firing', 'resolved')),
  fired_at         timestamptz NOT NULL,          -- the closed minute that fired it (event time)
  resolved_at      timestamptz,
  last_notified_at timestamptz,
  clear_minutes    int NOT NULL DEFAULT 0,        -- consecutive closed minutes with the condition false
  rule_version     text NOT NULL,
  evidence         jsonb NOT NULL,                -- evidence of the latest transition
  replay           boolean NOT NULL DEFAULT false,-- computed while replaying history: never sent to Slack
  updated_at       timestamptz NOT NULL DEFAULT now()
);
-- (rule, merchant) identifies an alert: at most one firing at a time.
CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_firing ON alerts (rule, merchant_id) WHERE state = 'firing';
CREATE INDEX IF NOT EXISTS alerts_merchant ON alerts (merchant_id, id DESC);
CREATE INDEX IF NOT EXISTS alerts_fired ON alerts (fired_at DESC, id DESC);

CREATE TABLE IF NOT EXISTS alert_transitions (
  id          bigserial PRIMARY KEY,
  alert_id    bigint NOT NULL REFERENCES alerts ON DELETE CASCADE,
  kind        text NOT NULL CHECK (kind IN ('fired', 'renotified', 'resolved')),
  minute      timestamptz NOT NULL,               -- the closed minute that caused it
  evidence    jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS alert_transitions_alert ON alert_transitions (alert_id, id);

-- Outbox: a notification row is written in the same transaction as its transition, so none is lost or doubled.
CREATE TABLE IF NOT EXISTS notifications (
  id              bigserial PRIMARY KEY,
  transition_id   bigint NOT NULL REFERENCES alert_transitions ON DELETE CASCADE,
  channel         text NOT NULL DEFAULT 'slack',
  status          text NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'suppressed')),
  reason          text,                           -- why suppressed/failed (silenced, replay, 4xx …)
  attempts        int NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  created_at      timestamptz NOT NULL DEFAULT now(),
  sent_at         timestamptz
);
CREATE INDEX IF NOT EXISTS notifications_pending ON notifications (next_attempt_at) WHERE status = 'pending';

CREATE TABLE IF NOT EXISTS silences (
  id          bigserial PRIMARY KEY,
  merchant_id text,                               -- NULL: every merchant
  rule        text,                               -- NULL: every rule
  starts_at   timestamptz NOT NULL DEFAULT now(),
  ends_at     timestamptz NOT NULL,
  reason      text NOT NULL DEFAULT '',
  created_by  text NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL DEFAULT now(),
  CHECK (merchant_id IS NOT NULL OR rule IS NOT NULL),
  CHECK (ends_at > starts_at)
);

-- The latest evaluation of each (rule, merchant): status and the reason when not evaluated.
CREATE TABLE IF NOT EXISTS evaluations (
  rule        text NOT NULL,
  merchant_id text NOT NULL,
  minute      timestamptz NOT NULL,
  status      text NOT NULL CHECK (status IN ('breach', 'clear', 'not_evaluated')),
  reason      text,
  evidence    jsonb,
  PRIMARY KEY (rule, merchant_id)
);

-- How far the evaluator has gone (exactly-once evaluation of closed minutes across restarts).
CREATE TABLE IF NOT EXISTS evaluator_progress (
  name        text PRIMARY KEY,
  last_minute timestamptz NOT NULL
);

-- Rules as versioned data, and backtests (docs/contracts.md "Rules and backtests").
--
-- Every version is kept: a draft until activated; exactly one version is active (the latest activation). The
-- evaluator reads the latest activation before each closed minute, so an activation applies from the next one.
CREATE TABLE IF NOT EXISTS rule_versions (
  version      text PRIMARY KEY,
  seq          bigserial UNIQUE,                  -- creation order
  config       jsonb NOT NULL,                    -- the effective RISKMON_RULES shape (defaults merged), without "version"
  note         text NOT NULL DEFAULT '',
  created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  created_by   text NOT NULL
);

CREATE TABLE IF NOT EXISTS rule_activations (
  id           bigserial PRIMARY KEY,
  version      text NOT NULL REFERENCES rule_versions,
  activated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  activated_by text NOT NULL
);

-- One row per closed minute the live evaluator evaluated: which rule version decided it, and how far ingestion lagged
-- behind the wall clock then (volume_drop is not evaluated while it lags) — the one input of a minute that is not in
-- the buckets, so a backtest can reproduce the live decision exactly. The primary key makes "evaluated twice" impossible.
CREATE TABLE IF NOT EXISTS evaluated_minutes (
  evaluator     text NOT NULL,
  minute        timestamptz NOT NULL,
  rule_version  text NOT NULL,
  ingest_lag_ms bigint NOT NULL,
  PRIMARY KEY (evaluator, minute)
);

-- Each firing alert's count of consecutive clear minutes, whenever it changed (with or without a transition): with the
-- transitions it gives the lifecycle state at any past minute, where a backtest starting then picks it up.
CREATE TABLE IF NOT EXISTS alert_clear_log (
  alert_id      bigint NOT NULL REFERENCES alerts ON DELETE CASCADE,
  minute        timestamptz NOT NULL,
  clear_minutes int NOT NULL,
  PRIMARY KEY (alert_id, minute)
);

-- Backtests are jobs: the API queues them, the alerting process runs them one at a time (oldest first).
CREATE TABLE IF NOT EXISTS backtests (
  id            bigserial PRIMARY KEY,
  status        text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'failed')),
  period_from   timestamptz NOT NULL,
  period_to     timestamptz NOT NULL CHECK (period_to > period_from),
  version       text REFERENCES rule_versions,  -- NULL: an unsaved config
  config        jsonb NOT NULL,                  -- the effective config evaluated (with "version")
  created_by    text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
  started_at    timestamptz,
  finished_at   timestamptz,
  progress      real NOT NULL DEFAULT 0,         -- share of the period's minutes evaluated, 0..1
  cancel_by     text,                            -- set by a cancel request; the runner stops at the next minute
  error         text,
  result        jsonb                            -- alerts, summary, vsLive, quality (when done)
);
CREATE INDEX IF NOT EXISTS backtests_queue ON backtests (id) WHERE status IN ('queued', 'running');

-- A shadow version: one draft evaluated beside the active version on live minutes, its would-be alerts stored here and
-- never sent. It starts from the live alerts firing when it starts (as an activation then would).
CREATE TABLE IF NOT EXISTS rule_shadows (
  id          bigserial PRIMARY KEY,
  version     text NOT NULL REFERENCES rule_versions,
  started_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  started_by  text NOT NULL,
  stopped_at  timestamptz,
  stopped_by  text,
  first_minute timestamptz,                      -- the first live minute it evaluated
  last_minute  timestamptz                       -- the latest (compare-and-set, like evaluator_progress)
);
CREATE UNIQUE INDEX IF NOT EXISTS rule_shadows_one ON rule_shadows ((true)) WHERE stopped_at IS NULL;

CREATE TABLE IF NOT EXISTS shadow_alerts (
  id               bigserial PRIMARY KEY,
  shadow_id        bigint NOT NULL REFERENCES rule_shadows ON DELETE CASCADE,
  rule             text NOT NULL,
  merchant_id      text NOT NULL,
  fired_at         timestamptz NOT NULL,
  resolved_at      timestamptz,
  last_notified_at timestamptz NOT NULL,
  clear_minutes    int NOT NULL DEFAULT 0,
  carried          boolean NOT NULL DEFAULT false,  -- firing live when the shadow started
  evidence         jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS shadow_alerts_shadow ON shadow_alerts (shadow_id, fired_at);

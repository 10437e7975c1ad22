-- Money at risk (docs/analysts.md "Exposure"). The receivable rule joins the rules an alert can belong to; every
-- alert records its merchant's exposure when it fired; merchant_exposure holds the exposure of every merchant that
-- owes a receivable now (receivable > 0), kept by the evaluator each closed minute, for the top list and for sorting
-- alerts by the receivable now (a merchant absent from it owes nothing).
ALTER TABLE alerts DROP CONSTRAINT IF EXISTS alerts_rule_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_rule_check
  CHECK (rule IN ('cancel_rate_spike', 'volume_drop', 'volume_spike', 'receivable') OR rule ~ '^composed:[a-z0-9_]{1,40}$');
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS exposure_at_fire jsonb;
CREATE TABLE IF NOT EXISTS merchant_exposure (
  merchant_id  text PRIMARY KEY,
  receivable   bigint NOT NULL CHECK (receivable > 0),
  exposure     jsonb NOT NULL,
  computed_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS merchant_exposure_by_receivable ON merchant_exposure (receivable DESC, merchant_id);

-- The analyst's desk: acknowledge, assign, notes and a disposition on every alert, and the audit trail of every
-- write made through the API.
--
-- The current triage state lives on the alert row (the list filters on it and one row lock serialises writers);
-- every action is also a row of alert_triage, so a changed disposition or assignee keeps its history.
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS ack_by text;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS ack_at timestamptz;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS assignee text;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS disposition text
  CHECK (disposition IN ('confirmed', 'false_positive', 'benign'));
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS disposition_by text;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS disposition_at timestamptz;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS disposition_note text;
CREATE INDEX IF NOT EXISTS alerts_assignee ON alerts (assignee, fired_at DESC) WHERE assignee IS NOT NULL;
CREATE INDEX IF NOT EXISTS alerts_open ON alerts (fired_at DESC, id DESC) WHERE disposition IS NULL;

CREATE TABLE IF NOT EXISTS alert_triage (
  id        bigserial PRIMARY KEY,
  alert_id  bigint NOT NULL REFERENCES alerts ON DELETE CASCADE,
  action    text NOT NULL CHECK (action IN ('ack', 'assign', 'note', 'disposition')),
  actor     text NOT NULL,
  at        timestamptz NOT NULL DEFAULT clock_timestamp(),
  value     text,          -- assign: the assignee (NULL: unassigned); disposition: its value
  note      text           -- note: its text; disposition: the note given with it
);
CREATE INDEX IF NOT EXISTS alert_triage_alert ON alert_triage (alert_id, id);

-- Append-only: the API has no route that changes it, and the database refuses UPDATE and DELETE as well.
CREATE TABLE IF NOT EXISTS audit_log (
  id      bigserial PRIMARY KEY,
  at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  actor   text NOT NULL,
  action  text NOT NULL,   -- e.g. alert.ack, alert.disposition, silence.create, rules.activate, backtest.start
  target  text NOT NULL,   -- e.g. alert:42, silence:7
  detail  jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at DESC, id DESC);
CREATE INDEX IF NOT EXISTS audit_log_actor ON audit_log (actor, id DESC);

CREATE OR REPLACE FUNCTION riskmon_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION riskmon_audit_append_only();

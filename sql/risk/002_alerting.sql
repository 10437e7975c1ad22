-- alerting: transitions carry the replay flag (computed while replaying/catching up: stored, never sent to Slack)
-- and the rule version; notifications say which silence suppressed them and carry the last HTTP status;
-- the sender claims due rows in id order.
ALTER TABLE alert_transitions ADD COLUMN IF NOT EXISTS replay boolean NOT NULL DEFAULT false;
ALTER TABLE alert_transitions ADD COLUMN IF NOT EXISTS rule_version text NOT NULL DEFAULT '';
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS silence_id bigint REFERENCES silences ON DELETE SET NULL;
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS last_status int;
CREATE INDEX IF NOT EXISTS notifications_due ON notifications (id) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS silences_active ON silences (ends_at);

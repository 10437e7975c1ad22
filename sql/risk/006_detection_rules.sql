-- volume_spike (the bust-out) and the rules composed from metrics (`composed:<name>`) join the rules an alert can
-- belong to.
ALTER TABLE alerts DROP CONSTRAINT IF EXISTS alerts_rule_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_rule_check
  CHECK (rule IN ('cancel_rate_spike', 'volume_drop', 'volume_spike') OR rule ~ '^composed:[a-z0-9_]{1,40}$');

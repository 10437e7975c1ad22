-- The reference source schema (docs/contracts.md). REPLICA IDENTITY FULL makes UPDATE and DELETE carry the old row,
-- which the aggregator needs to correct the bucket the row was counted in.
CREATE TABLE IF NOT EXISTS merchants (
  merchant_id  bigint PRIMARY KEY,
  name         text NOT NULL,
  category     text NOT NULL DEFAULT 'general',
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS payments (
  payment_id   bigint PRIMARY KEY,
  merchant_id  bigint NOT NULL REFERENCES merchants,
  amount       bigint NOT NULL CHECK (amount > 0),
  approved_at  timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS payment_cancels (
  cancel_id    bigint PRIMARY KEY,
  payment_id   bigint NOT NULL REFERENCES payments,
  merchant_id  bigint NOT NULL,
  amount       bigint NOT NULL CHECK (amount > 0),
  canceled_at  timestamptz NOT NULL
);
ALTER TABLE payments REPLICA IDENTITY FULL;
ALTER TABLE payment_cancels REPLICA IDENTITY FULL;
-- Indexes a merchant-time query needs (the SQL truth in tests, the GROUP BY baseline in the benchmark).
CREATE INDEX IF NOT EXISTS payments_merchant_time ON payments (merchant_id, approved_at);
CREATE INDEX IF NOT EXISTS payment_cancels_merchant_time ON payment_cancels (merchant_id, canceled_at);

-- Payouts (docs/contracts.md "Payouts"): a payout settles every approval and cancel of its merchant with a
-- transaction time before covers_to (a minute boundary); it counts once paid_at has passed. riskmon reads it to
-- know each merchant's settled-through time and next payout (money at risk, docs/analysts.md). REPLICA IDENTITY FULL
-- like the other tables: an UPDATE or DELETE of a payout must carry the old row to be undone exactly.
CREATE TABLE IF NOT EXISTS payouts (
  payout_id    bigint PRIMARY KEY,
  merchant_id  bigint NOT NULL,
  amount       bigint NOT NULL,
  covers_to    timestamptz NOT NULL,
  paid_at      timestamptz NOT NULL
);
ALTER TABLE payouts REPLICA IDENTITY FULL;
CREATE INDEX IF NOT EXISTS payouts_merchant_paid ON payouts (merchant_id, paid_at);
-- Published like payments and payment_cancels (the cdc adds a mapped table missing from its publication too).
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'riskmon_pub' AND NOT puballtables)
     AND NOT EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = 'riskmon_pub' AND schemaname = 'public' AND tablename = 'payouts') THEN
    ALTER PUBLICATION riskmon_pub ADD TABLE payouts;
  END IF;
END $$;

-- The publication the cdc reads (its name is RISKMON_PUBLICATION, default riskmon_pub; the cdc creates or checks
-- it too, for a user's own schema).
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'riskmon_pub') THEN
    CREATE PUBLICATION riskmon_pub FOR TABLE payments, payment_cancels;
  END IF;
END $$;

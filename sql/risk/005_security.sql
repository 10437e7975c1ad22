-- Bounded backtests: how many times a runner took a job. A job whose process died while running it is taken again
-- once; a second death marks it failed instead of crash-looping the alerting process (backtest/jobs.ts).
ALTER TABLE backtests ADD COLUMN IF NOT EXISTS attempts int NOT NULL DEFAULT 0;

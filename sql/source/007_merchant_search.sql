-- Merchant search (GET /api/merchants?q=) by part of a name is served by a trigram index (pg_trgm), not a scan of
-- the source's merchant directory. pg_trgm is a trusted extension: the database owner may create it. A migrator
-- that may not gets a notice and the search scans until an operator creates the extension and the index
-- (docs/security.md "Merchant search"); the API says so once in its log and in /api/status.
DO $trgm$
BEGIN
  BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
  EXCEPTION WHEN insufficient_privilege OR undefined_file OR feature_not_supported THEN
    RAISE NOTICE 'riskmon: pg_trgm could not be created (%); merchant search by name scans the directory until it is (docs/security.md)', SQLERRM;
    RETURN;
  END;
  IF to_regclass('public.merchants') IS NOT NULL THEN
    CREATE INDEX IF NOT EXISTS merchants_name_trgm ON public.merchants USING gin (name gin_trgm_ops);
  END IF;
END
$trgm$;

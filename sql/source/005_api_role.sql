-- Least privilege on the source (docs/security.md): the API reads the merchant directory and nothing else; it does
-- not use the cdc's replication credentials. riskmon_source_directory is a group role without login; operators
-- grant it to the API's login role. A migrator without CREATEROLE gets a notice (the DDL is in docs/security.md).
-- A merchant directory of your own (RISKMON_MAPPING "merchants") needs the same SELECT on that table.
DO $roles$
DECLARE
  can_create boolean := (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user);
BEGIN
  IF NOT can_create THEN
    RAISE NOTICE 'riskmon: % may not create roles; create riskmon_source_directory as docs/security.md says', current_user;
    RETURN;
  END IF;
  BEGIN CREATE ROLE riskmon_source_directory NOLOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END;
  IF to_regclass('public.merchants') IS NOT NULL THEN
    GRANT USAGE ON SCHEMA public TO riskmon_source_directory;
    GRANT SELECT ON public.merchants TO riskmon_source_directory;
  END IF;
END
$roles$;

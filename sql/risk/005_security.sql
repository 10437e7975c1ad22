-- Bounded backtests: how many times a runner took a job. A job whose process died while running it is taken again
-- once; a second death marks it failed instead of crash-looping the alerting process (backtest/jobs.ts).
ALTER TABLE backtests ADD COLUMN IF NOT EXISTS attempts int NOT NULL DEFAULT 0;

-- The audit trail refuses TRUNCATE as well as UPDATE and DELETE. A statement trigger binds even the table's owner
-- (until the owner disables it — which only the owner may, and no service connects as the owner).
DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log;
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION riskmon_audit_append_only();

-- Least privilege (docs/security.md): two group roles without login.
--   riskmon_audit_owner  owns audit_log; no service logs in as it or is a member of it.
--   riskmon_risk_rw      what the api and the alerting need: read and write the risk store's tables, append to the
--                        audit trail (SELECT and INSERT only: no UPDATE, DELETE, TRUNCATE, no ALTER as a non-owner).
-- Operators create the login roles the services use and grant riskmon_risk_rw to them. Creating roles needs
-- CREATEROLE: a migrator without it gets a notice, and the roles and grants are left to the operator (the DDL below is
-- in docs/security.md).
DO $roles$
DECLARE
  can_create boolean := (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user);
BEGIN
  IF NOT can_create THEN
    RAISE NOTICE 'riskmon: % may not create roles; create riskmon_audit_owner and riskmon_risk_rw as docs/security.md says', current_user;
    RETURN;
  END IF;
  BEGIN CREATE ROLE riskmon_audit_owner NOLOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END;
  BEGIN CREATE ROLE riskmon_risk_rw NOLOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END;
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO riskmon_risk_rw', current_schema());
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO riskmon_risk_rw', current_schema());
  EXECUTE format('GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA %I TO riskmon_risk_rw', current_schema());
  -- tables and sequences later migrations create get the same grants
  EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO riskmon_risk_rw', current_schema());
  EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO riskmon_risk_rw', current_schema());
  REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON audit_log FROM riskmon_risk_rw;
  REVOKE ALL ON riskmon_migrations FROM riskmon_risk_rw;
  GRANT SELECT ON riskmon_migrations TO riskmon_risk_rw;
  ALTER TABLE audit_log OWNER TO riskmon_audit_owner;
  GRANT USAGE, SELECT ON SEQUENCE audit_log_id_seq TO riskmon_risk_rw;
END
$roles$;

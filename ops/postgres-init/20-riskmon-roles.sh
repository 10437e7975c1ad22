# compose.yaml: one login role per service (docs/security.md "Database roles"), created on the first start of the
# postgres container with the passwords of compose's secrets (scripts/compose-secrets.sh), before `riskmon migrate`
# runs as the superuser. Sourced by the image's entrypoint, which provides "${psql[@]}".
#   riskmon_cdc       REPLICATION; SELECT on the source's tables (default privileges: the migrations create them)
#   riskmon_api       riskmon_risk_rw (risk store) and riskmon_source_directory (the merchant directory only)
#   riskmon_alerting  riskmon_risk_rw, and riskmon_source_directory for merchant categories
# The group roles are created here so the grants can name them; the migrations grant them their privileges.
secret() { tr -d '\r\n' < "/run/secrets/$1"; }
"${psql[@]}" --dbname riskmon_source \
  --set=cdc="$(secret pg_cdc_password)" --set=api="$(secret pg_api_password)" --set=alerting="$(secret pg_alerting_password)" <<'SQL'
CREATE ROLE riskmon_risk_rw NOLOGIN;
CREATE ROLE riskmon_audit_owner NOLOGIN;
CREATE ROLE riskmon_source_directory NOLOGIN;
CREATE ROLE riskmon_cdc LOGIN REPLICATION PASSWORD :'cdc';
CREATE ROLE riskmon_api LOGIN PASSWORD :'api' IN ROLE riskmon_risk_rw, riskmon_source_directory;
CREATE ROLE riskmon_alerting LOGIN PASSWORD :'alerting' IN ROLE riskmon_risk_rw, riskmon_source_directory;
GRANT USAGE ON SCHEMA public TO riskmon_cdc;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT SELECT ON TABLES TO riskmon_cdc;
SQL

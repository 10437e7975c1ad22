-- compose.yaml: the risk store database beside the source (POSTGRES_DB=riskmon_source), created on the first start
-- of the postgres container. riskmon migrates both schemas itself (`riskmon migrate`, and `alerting` at start).
CREATE DATABASE riskmon_risk;

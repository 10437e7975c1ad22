-- The reference publication publishes via the partition root, as the cdc wants it (cdc/setup.ts): set here by the
-- migrating owner, so a cdc logging in as its own replication role (not the tables' owner) finds nothing to change.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'riskmon_pub' AND NOT pubviaroot) THEN
    ALTER PUBLICATION riskmon_pub SET (publish_via_partition_root = true);
  END IF;
END $$;

/**
 * Preflight and setup: everything the cdc needs before it streams, checked with errors that name the fix.
 * Creates what is missing (publication, slot, topics) and verifies what exists.
 */
import type { Kafka } from 'kafkajs';
import type pg from 'pg';
import { createClient } from '../lib/pg.ts';
import type { Logger } from '../lib/logger.ts';
import { mappedColumns, tablesOf, type Mapping } from '../lib/mapping.ts';
import { mappedColumnProblem } from './columns.ts';
import { createTopics, durabilityOf, durabilityWarnings, retryTransient, TopicSetupError } from '../lib/kafka/index.ts';
import { SetupError, SlotLostError, SQLSTATE, sqlState } from './errors.ts';

export interface SetupOptions {
  pgUrl: string;
  mapping: Mapping;
  publication: string;
  slot: string;
  topic: string;
  partitions: number;
  dlqTopic: string;
  hotsetTopic: string;
  retentionMs: number;
  /** replication factor of created topics; 0 = the brokers' default */
  topicReplication: number;
}

const ident = (s: string) => `"${s.replaceAll('"', '""')}"`;
const qualified = (t: string) => t.split('.').map(ident).join('.');

/** A client of the source, connected; a refused connection or an untrusted certificate is a SetupError naming PG_URL. */
export async function connectSource(pgUrl: string): Promise<ReturnType<typeof createClient>> {
  const c = createClient({ connectionString: pgUrl });
  try {
    await c.connect();
  } catch (err) {
    await c.end().catch(() => {});
    throw new SetupError(`cannot connect to the source PostgreSQL (PG_URL): ${(err as Error).message}`, 'check PG_URL (host, port, user, database), that the server runs, and for TLS its CA (sslrootcert)', { cause: err });
  }
  return c;
}

/** `createSlot: false`: a missing slot is left to the first start's backfill (backfill.ts), which creates it with its snapshot. */
export async function setupSource(o: SetupOptions, log: Logger, opts: { createSlot?: boolean } = {}): Promise<void> {
  const c = await connectSource(o.pgUrl);
  try {
    const walLevel = (await c.query('SHOW wal_level')).rows[0].wal_level;
    if (walLevel !== 'logical') {
      throw new SetupError(`wal_level is "${walLevel}", logical replication needs "logical"`, 'ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL');
    }
    const role = (await c.query('SELECT current_user AS u, rolreplication OR rolsuper AS ok FROM pg_roles WHERE rolname = current_user')).rows[0];
    if (!role.ok) throw new SetupError(`role "${role.u}" may not start replication`, `ALTER ROLE ${ident(role.u)} REPLICATION; (run as a superuser)`);

    for (const table of tablesOf(o.mapping)) {
      const [schema, name] = table.split('.');
      const rel = (await c.query(
        `SELECT c.oid, c.relreplident, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r','p')`,
        [schema, name])).rows[0];
      const sides = mappedColumns(table, o.mapping).map((x) => x.field.split('.')[0]).filter((x, i, a) => a.indexOf(x) === i).join('" and "');
      if (!rel) throw new SetupError(`table ${table} (mapping "${sides}") does not exist`, `create it (riskmon migrate for the reference schema) or set RISKMON_MAPPING to your table`);
      const cols = (await c.query(`SELECT attname AS name, atttypid::int AS "typeOid", atttypmod AS "typeMod", format_type(atttypid, atttypmod) AS "typeName"
        FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, [rel.oid])).rows;
      for (const { column, field } of mappedColumns(table, o.mapping)) {
        if (!cols.some((x) => x.name === column)) throw new SetupError(`column ${table}.${column} (mapping "${field}") does not exist`, `fix RISKMON_MAPPING; ${table} has ${cols.map((x) => x.name).join(', ')}`);
      }
      const problem = mappedColumnProblem(table, cols, o.mapping);
      if (problem) throw problem;
      if (rel.relreplident !== 'f') {
        log.warn({ table, replicaIdentity: rel.relreplident },
          `${table} does not have REPLICA IDENTITY FULL: UPDATE and DELETE will not carry the old row, and such changes go to the dead-letter topic. Fix: ALTER TABLE ${qualified(table)} REPLICA IDENTITY FULL;`);
      } else if (rel.relkind === 'p') {
        await syncPartitionIdentity(c, o.mapping, log);
      }
    }

    await ensurePublication(c, o, log);
    await ensureSlot(c, o, log, opts.createSlot ?? true);
  } finally {
    await c.end().catch(() => {});
  }
}

/**
 * The publication: every mapped table, published via the partition root (publish_via_partition_root), so a
 * partitioned parent's changes carry the parent's name — the one in the mapping — whatever partition holds the
 * row, partitions created later included, and a row moved between partitions arrives as a DELETE and an INSERT of
 * the parent (counted once). No column list: with REPLICA IDENTITY FULL, PostgreSQL 15 refuses the application's
 * UPDATEs and DELETEs on a table whose column list leaves out any column, and blocks dropping a listed column; the
 * router trims events to the mapped columns instead.
 */
async function ensurePublication(c: pg.Client, o: SetupOptions, log: Logger): Promise<void> {
  const tables = tablesOf(o.mapping);
  const pub = (await c.query('SELECT oid, pubinsert, pubupdate, pubdelete, puballtables, pubviaroot FROM pg_publication WHERE pubname = $1', [o.publication])).rows[0];
  const create = `CREATE PUBLICATION ${ident(o.publication)} FOR TABLE ${tables.map(qualified).join(', ')} WITH (publish_via_partition_root = true);`;
  try {
    if (!pub) {
      await c.query(create);
      log.info({ publication: o.publication, tables }, 'publication created');
      return;
    }
    if (!pub.pubinsert || !pub.pubupdate || !pub.pubdelete) {
      throw new SetupError(`publication "${o.publication}" does not publish every INSERT, UPDATE and DELETE`, `ALTER PUBLICATION ${ident(o.publication)} SET (publish = 'insert, update, delete, truncate');`);
    }
    if (!pub.pubviaroot) {
      // without it PostgreSQL names each change after its leaf partition, which is in no mapping
      await c.query(`ALTER PUBLICATION ${ident(o.publication)} SET (publish_via_partition_root = true)`);
      log.warn({ publication: o.publication }, `publication "${o.publication}" did not publish via the partition root: set publish_via_partition_root = true, so changes of a partitioned table carry its own name`);
    }
    if (pub.puballtables) return;
    // membership from pg_publication_rel (pg_publication_tables lists the leaves of a partitioned table, or its
    // root, depending on publish_via_partition_root)
    const have = new Set((await c.query(
      `SELECT n.nspname || '.' || cl.relname AS t FROM pg_publication_rel r JOIN pg_class cl ON cl.oid = r.prrelid JOIN pg_namespace n ON n.oid = cl.relnamespace WHERE r.prpubid = $1
       UNION SELECT n.nspname || '.' || cl.relname FROM pg_publication_namespace pn JOIN pg_class cl ON cl.relnamespace = pn.pnnspid JOIN pg_namespace n ON n.oid = cl.relnamespace WHERE pn.pnpubid = $1`,
      [pub.oid])).rows.map((r) => r.t));
    const lists = (await c.query(`SELECT n.nspname || '.' || cl.relname AS t FROM pg_publication_rel r JOIN pg_class cl ON cl.oid = r.prrelid JOIN pg_namespace n ON n.oid = cl.relnamespace WHERE r.prpubid = $1 AND r.prattrs IS NOT NULL`, [pub.oid])).rows.map((r) => r.t);
    for (const t of lists.filter((x) => tables.includes(x))) {
      log.warn({ publication: o.publication, table: t }, `publication "${o.publication}" publishes a column list of ${t}: with REPLICA IDENTITY FULL PostgreSQL refuses UPDATE and DELETE on it unless the list covers every column. riskmon trims events itself; fix: ALTER PUBLICATION ${ident(o.publication)} SET TABLE ... without a column list for ${t}`);
    }
    for (const t of tables) {
      if (have.has(t)) continue;
      await c.query(`ALTER PUBLICATION ${ident(o.publication)} ADD TABLE ${qualified(t)}`);
      log.info({ publication: o.publication, table: t }, 'table added to the publication');
    }
  } catch (err) {
    if (sqlState(err) === SQLSTATE.insufficientPrivilege) {
      throw new SetupError(`not allowed to create or change publication "${o.publication}": ${(err as Error).message}`,
        `as the tables' owner or a superuser: ${pub ? `ALTER PUBLICATION ${ident(o.publication)} SET (publish_via_partition_root = true); ALTER PUBLICATION ${ident(o.publication)} ADD TABLE <each mapped table not in it>;` : create}`, { cause: err });
    }
    throw err;
  }
}

/**
 * PostgreSQL does not carry a partitioned table's REPLICA IDENTITY to its partitions, and a partition without
 * FULL sends no old row with an UPDATE or DELETE (those would be dead-lettered). For each mapped partitioned table
 * whose own identity is FULL, sets FULL on every partition that lacks it (created since the last check); returns
 * the partitions it changed. Run at start and periodically (PartitionIdentityService).
 */
export async function syncPartitionIdentity(c: pg.Client | pg.Pool, mapping: Mapping, log: Logger): Promise<string[]> {
  const { rows } = await c.query<{ leaf: string }>(
    `SELECT format('%I.%I', ln.nspname, l.relname) AS leaf
       FROM unnest($1::text[]) AS t(name)
       JOIN pg_class p ON p.oid = to_regclass(format('%I.%I', split_part(t.name, '.', 1), split_part(t.name, '.', 2)))
       CROSS JOIN LATERAL pg_partition_tree(p.oid) pt
       JOIN pg_class l ON l.oid = pt.relid
       JOIN pg_namespace ln ON ln.oid = l.relnamespace
      WHERE p.relkind = 'p' AND p.relreplident = 'f' AND pt.relid <> p.oid AND l.relkind = 'r' AND l.relreplident <> 'f'`,
    [tablesOf(mapping)]);
  const done: string[] = [];
  for (const { leaf } of rows) {
    try {
      await c.query(`ALTER TABLE ${leaf} REPLICA IDENTITY FULL`);
      done.push(leaf);
      log.info({ partition: leaf }, `partition ${leaf} given REPLICA IDENTITY FULL like its partitioned table`);
    } catch (err) {
      log.warn({ partition: leaf, err: (err as Error).message },
        `partition ${leaf} lacks REPLICA IDENTITY FULL, and riskmon may not set it: its UPDATEs and DELETEs go to the dead-letter topic. Fix: ALTER TABLE ${leaf} REPLICA IDENTITY FULL; (as its owner)`);
    }
  }
  return done;
}

async function ensureSlot(c: pg.Client, o: SetupOptions, log: Logger, create: boolean): Promise<void> {
  const db = (await c.query('SELECT current_database() AS d')).rows[0].d;
  const slot = (await c.query('SELECT plugin, slot_type, database, wal_status FROM pg_replication_slots WHERE slot_name = $1', [o.slot])).rows[0];
  if (slot) {
    if (slot.slot_type !== 'logical' || slot.plugin !== 'pgoutput') {
      throw new SetupError(`slot "${o.slot}" exists but is ${slot.slot_type}/${slot.plugin}, not logical/pgoutput`, `choose another RISKMON_SLOT, or drop it: SELECT pg_drop_replication_slot('${o.slot}');`);
    }
    if (slot.database !== db) {
      throw new SetupError(`slot "${o.slot}" belongs to database "${slot.database}", not "${db}"`, 'choose another RISKMON_SLOT or point PG_URL at that database');
    }
    if (slot.wal_status === 'lost') throw new SlotLostError(o.slot);
    return;
  }
  if (!create) return;
  try {
    const r = await c.query(`SELECT lsn FROM pg_create_logical_replication_slot($1, 'pgoutput')`, [o.slot]);
    log.info({ slot: o.slot, lsn: r.rows[0].lsn }, 'replication slot created');
  } catch (err) {
    const code = sqlState(err);
    if (code === SQLSTATE.duplicateObject) return; // created concurrently
    if (code === SQLSTATE.configurationLimit) {
      throw new SetupError(`no free replication slot: ${(err as Error).message}`, 'raise max_replication_slots (restart needed) or drop an unused slot (SELECT * FROM pg_replication_slots)', { cause: err });
    }
    if (code === SQLSTATE.insufficientPrivilege) {
      throw new SetupError(`not allowed to create slot "${o.slot}"`, 'ALTER ROLE <user> REPLICATION; or create the slot as a superuser', { cause: err });
    }
    throw err;
  }
}

/** What the cdc learns from the change topic: the largest event it may write there. */
export interface TopicLimits { maxMessageBytes: number }

/** Room for a record's key, headers and batch framing beside its value under max.message.bytes. */
const RECORD_OVERHEAD = 4096;

export async function setupTopics(kafka: Kafka, o: SetupOptions & { maxMessageBytes: number }, log: Logger): Promise<TopicLimits> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const retention = [{ name: 'retention.ms', value: String(o.retentionMs) }];
    let created: string[];
    try {
      created = await createTopics(admin, [
        { topic: o.topic, numPartitions: o.partitions, configEntries: retention },
        { topic: o.dlqTopic, numPartitions: 1, configEntries: retention },
        { topic: o.hotsetTopic, numPartitions: 1, configEntries: retention },
      ], { replication: o.topicReplication });
    } catch (err) {
      if (err instanceof TopicSetupError) throw new SetupError(err.message, 'check RISKMON_TOPIC_REPLICATION against the brokers in KAFKA_BROKERS', { cause: err });
      throw err;
    }
    if (created.length) log.info({ topics: created, partitions: o.partitions, replication: o.topicReplication || 'broker default' }, 'topics created');
    // any broker may answer, and one may not have heard of a topic just created yet
    const meta = await retryTransient(() => admin.fetchTopicMetadata({ topics: [o.topic] }), { what: `metadata of ${o.topic}` });
    const n = meta.topics[0].partitions.length;
    if (n !== o.partitions) {
      throw new SetupError(`topic ${o.topic} has ${n} partitions but RISKMON_PARTITIONS is ${o.partitions}`,
        `set RISKMON_PARTITIONS=${n} everywhere, or use a new RISKMON_TOPIC (partitioning is fixed once events are written; a new topic needs a rebuild)`);
    }
    for (const warning of durabilityWarnings(o.topic, await durabilityOf(admin, o.topic))) log.warn({ topic: o.topic }, warning);
    const cfg = await retryTransient(() => admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: o.topic, configNames: ['retention.ms', 'max.message.bytes'] }] }), { what: `configuration of ${o.topic}` });
    const ret = Number(cfg.resources[0]?.configEntries.find((e) => e.configName === 'retention.ms')?.configValue ?? -1);
    const topicMax = Number(cfg.resources[0]?.configEntries.find((e) => e.configName === 'max.message.bytes')?.configValue ?? NaN);
    if (ret >= 0 && ret < 8 * 86_400_000) {
      log.warn({ topic: o.topic, retentionMs: ret },
        `topic ${o.topic} keeps events for less than 8 days: a replay may find its start gone. Fix: kafka-configs.sh --bootstrap-server <broker> --alter --entity-type topics --entity-name ${o.topic} --add-config retention.ms=${o.retentionMs}`);
    }
    let maxMessageBytes = o.maxMessageBytes;
    if (Number.isFinite(topicMax) && topicMax - RECORD_OVERHEAD < maxMessageBytes) {
      maxMessageBytes = Math.max(1024, topicMax - RECORD_OVERHEAD);
      log.info({ topic: o.topic, topicMaxMessageBytes: topicMax, maxMessageBytes }, `topic ${o.topic} takes messages up to ${topicMax} bytes: larger change events go to the dead-letter topic`);
    }
    return { maxMessageBytes };
  } finally {
    await admin.disconnect();
  }
}

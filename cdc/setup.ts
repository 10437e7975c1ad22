/**
 * Preflight and setup: everything the cdc needs before it streams, checked with errors that name the fix.
 * Creates what is missing (publication, slot, topics) and verifies what exists.
 */
import type { Kafka } from 'kafkajs';
import type pg from 'pg';
import { createClient } from '../lib/pg.ts';
import type { Logger } from '../lib/logger.ts';
import { tablesOf, type Mapping } from '../lib/mapping.ts';
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

/** `createSlot: false`: a missing slot is left to the first start's backfill (backfill.ts), which creates it with its snapshot. */
export async function setupSource(o: SetupOptions, log: Logger, opts: { createSlot?: boolean } = {}): Promise<void> {
  const c = createClient({ connectionString: o.pgUrl });
  try {
    await c.connect();
  } catch (err) {
    throw new SetupError(`cannot connect to the source PostgreSQL (PG_URL): ${(err as Error).message}`, 'check PG_URL (host, port, user, database) and that the server runs', { cause: err });
  }
  try {
    const walLevel = (await c.query('SHOW wal_level')).rows[0].wal_level;
    if (walLevel !== 'logical') {
      throw new SetupError(`wal_level is "${walLevel}", logical replication needs "logical"`, 'ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL');
    }
    const role = (await c.query('SELECT current_user AS u, rolreplication OR rolsuper AS ok FROM pg_roles WHERE rolname = current_user')).rows[0];
    if (!role.ok) throw new SetupError(`role "${role.u}" may not start replication`, `ALTER ROLE ${ident(role.u)} REPLICATION; (run as a superuser)`);

    for (const [side, t] of [['approvals', o.mapping.approvals], ['cancels', o.mapping.cancels]] as const) {
      const [schema, name] = t.table.split('.');
      const rel = (await c.query(
        `SELECT c.oid, c.relreplident FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r','p')`,
        [schema, name])).rows[0];
      if (!rel) throw new SetupError(`table ${t.table} (mapping "${side}") does not exist`, `create it (riskmon migrate for the reference schema) or set RISKMON_MAPPING to your table`);
      const cols = new Set((await c.query('SELECT attname FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped', [rel.oid])).rows.map((r) => r.attname));
      for (const col of [t.id, t.merchant, t.amount, t.time]) {
        if (!cols.has(col)) throw new SetupError(`column ${t.table}.${col} (mapping "${side}") does not exist`, `fix RISKMON_MAPPING; ${t.table} has ${[...cols].join(', ')}`);
      }
      if (rel.relreplident !== 'f') {
        log.warn({ table: t.table, replicaIdentity: rel.relreplident },
          `${t.table} does not have REPLICA IDENTITY FULL: UPDATE and DELETE will not carry the old row, and such changes go to the dead-letter topic. Fix: ALTER TABLE ${qualified(t.table)} REPLICA IDENTITY FULL;`);
      }
    }

    await ensurePublication(c, o, log);
    await ensureSlot(c, o, log, opts.createSlot ?? true);
  } finally {
    await c.end().catch(() => {});
  }
}

async function ensurePublication(c: pg.Client, o: SetupOptions, log: Logger): Promise<void> {
  const tables = tablesOf(o.mapping);
  const pub = (await c.query('SELECT pubinsert, pubupdate, pubdelete, puballtables FROM pg_publication WHERE pubname = $1', [o.publication])).rows[0];
  try {
    if (!pub) {
      await c.query(`CREATE PUBLICATION ${ident(o.publication)} FOR TABLE ${tables.map(qualified).join(', ')}`);
      log.info({ publication: o.publication, tables }, 'publication created');
      return;
    }
    if (!pub.pubinsert || !pub.pubupdate || !pub.pubdelete) {
      throw new SetupError(`publication "${o.publication}" does not publish every INSERT, UPDATE and DELETE`, `ALTER PUBLICATION ${ident(o.publication)} SET (publish = 'insert, update, delete, truncate');`);
    }
    const have = new Set((await c.query(`SELECT schemaname || '.' || tablename AS t FROM pg_publication_tables WHERE pubname = $1`, [o.publication])).rows.map((r) => r.t));
    for (const t of tables) {
      if (have.has(t)) continue;
      await c.query(`ALTER PUBLICATION ${ident(o.publication)} ADD TABLE ${qualified(t)}`);
      log.info({ publication: o.publication, table: t }, 'table added to the publication');
    }
  } catch (err) {
    if (sqlState(err) === SQLSTATE.insufficientPrivilege) {
      throw new SetupError(`not allowed to create or change publication "${o.publication}": ${(err as Error).message}`,
        `as the tables' owner or a superuser: CREATE PUBLICATION ${ident(o.publication)} FOR TABLE ${tables.map(qualified).join(', ')};`, { cause: err });
    }
    throw err;
  }
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

export async function setupTopics(kafka: Kafka, o: SetupOptions, log: Logger): Promise<void> {
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
    const cfg = await retryTransient(() => admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: o.topic, configNames: ['retention.ms'] }] }), { what: `configuration of ${o.topic}` });
    const ret = Number(cfg.resources[0]?.configEntries.find((e) => e.configName === 'retention.ms')?.configValue ?? -1);
    if (ret >= 0 && ret < 8 * 86_400_000) {
      log.warn({ topic: o.topic, retentionMs: ret },
        `topic ${o.topic} keeps events for less than 8 days: a replay may find its start gone. Fix: kafka-configs.sh --bootstrap-server <broker> --alter --entity-type topics --entity-name ${o.topic} --add-config retention.ms=${o.retentionMs}`);
    }
  } finally {
    await admin.disconnect();
  }
}

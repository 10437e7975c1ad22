/**
 * PostgreSQL, Kafka and Redis for the integration tests as containers (testcontainers), the harness's path on a
 * machine where a Docker engine answers (a laptop with Docker Desktop, macOS included: no apt, no JRE). The images
 * are the official ones unless RISKMON_POSTGRES_IMAGE / RISKMON_KAFKA_IMAGE / RISKMON_REDIS_IMAGE name others
 * (`npm run images -- local` builds stand-ins; scripts/images-lib.ts). Settings follow the native launcher
 * (scripts/stack/index.ts), so a test sees the same services either way: wal_level=logical with room for many
 * slots, a single-node KRaft broker with 12 partitions per topic, Redis with an append-only file.
 *
 * Host ports are picked free and bound explicitly: Kafka must advertise the address clients reach it on, which a
 * port chosen by Docker would only reveal after the broker started.
 * Ryuk (testcontainers' reaper) is off unless TESTCONTAINERS_RYUK_DISABLED says otherwise: its image comes from a
 * registry, which CI here cannot reach; the global setup's teardown stops the containers instead.
 */
import crypto from 'node:crypto';
import pg from 'pg';
import { baseImage } from '../../scripts/images-lib.ts';
import { freePort } from '../../lib/net.ts';
import { withDatabase, type StackEnv } from '../../scripts/stack/index.ts';

process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';

const PG_PASSWORD = 'riskmon';

export interface ContainerStack {
  env: StackEnv;
  /** Image and container id of each service, for logs and reports. */
  containers: { service: string; image: string; id: string }[];
  stop(): Promise<void>;
}

export async function startContainers(log: (line: string) => void): Promise<ContainerStack> {
  // Imported here so a machine without Docker never loads the Docker client.
  const { GenericContainer, Wait } = await import('testcontainers');
  const run = crypto.randomBytes(3).toString('hex');
  const [pgPort, kafkaPort, redisPort] = [await freePort(), await freePort(), await freePort()];
  const labels = { 'org.riskmon.test-run': run };

  const postgres = new GenericContainer(baseImage('postgres'))
    .withName(`riskmon-test-pg-${run}`).withLabels(labels)
    .withEnvironment({ POSTGRES_PASSWORD: PG_PASSWORD, POSTGRES_DB: 'riskmon_source' })
    .withCommand(['postgres', '-c', 'wal_level=logical', '-c', 'max_replication_slots=32', '-c', 'max_wal_senders=32',
      '-c', 'max_connections=300', '-c', 'wal_sender_timeout=60s', '-c', 'shared_buffers=256MB', '-c', 'max_wal_size=2GB'])
    .withExposedPorts({ container: 5432, host: pgPort })
    // The official entrypoint (and the stand-in's) starts a temporary server for initialisation first.
    .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
    .withStartupTimeout(120_000);

  const kafka = new GenericContainer(baseImage('kafka'))
    .withName(`riskmon-test-kafka-${run}`).withLabels(labels)
    .withEnvironment({
      CLUSTER_ID: '5L6g3nShT-eMCtK--X86sw',
      KAFKA_NODE_ID: '1',
      KAFKA_PROCESS_ROLES: 'broker,controller',
      KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:9093',
      KAFKA_LISTENERS: `PLAINTEXT://:${kafkaPort},CONTROLLER://:9093`,
      KAFKA_ADVERTISED_LISTENERS: `PLAINTEXT://127.0.0.1:${kafkaPort}`,
      KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
      KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
      KAFKA_INTER_BROKER_LISTENER_NAME: 'PLAINTEXT',
      KAFKA_NUM_PARTITIONS: '12',
      KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS: '12',
      KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
      KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
      KAFKA_LOG_RETENTION_HOURS: '216',
      KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'true',
      KAFKA_LOG_DIRS: '/var/lib/kafka/data',
      KAFKA_HEAP_OPTS: process.env.KAFKA_HEAP_OPTS ?? '-Xms256m -Xmx1g',
    })
    .withExposedPorts({ container: kafkaPort, host: kafkaPort })
    .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
    .withStartupTimeout(180_000);

  const redis = new GenericContainer(baseImage('redis'))
    .withName(`riskmon-test-redis-${run}`).withLabels(labels)
    .withCommand(['redis-server', '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec'])
    .withExposedPorts({ container: 6379, host: redisPort })
    .withWaitStrategy(Wait.forLogMessage(/Ready to accept connections/))
    .withStartupTimeout(60_000);

  const specs = [['pg', postgres], ['kafka', kafka], ['redis', redis]] as const;
  const settled = await Promise.allSettled(specs.map(async ([name, c]) => {
    const t0 = Date.now();
    const started = await c.start();
    log(`${name}: container ${started.getId().slice(0, 12)} up in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
    return started;
  }));
  const started = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const stop = async () => { await Promise.allSettled(started.map((c) => c.stop({ timeout: 10_000, remove: true, removeVolumes: true }))); };
  const failed = settled.flatMap((s, i) => (s.status === 'rejected' ? [`${specs[i][0]} (${baseImage(specs[i][0] === 'pg' ? 'postgres' : specs[i][0])}): ${(s.reason as Error).message}`] : []));
  if (failed.length) {
    await stop();
    throw new Error(`could not start the test services as containers:\n  ${failed.join('\n  ')}\n(no registry reachable? \`npm run images -- local\` builds stand-ins; or RISKMON_TEST_SERVICES=native)`);
  }

  const PG_URL = `postgres://postgres:${PG_PASSWORD}@127.0.0.1:${pgPort}/riskmon_source`;
  const admin = new pg.Client({ connectionString: withDatabase(PG_URL, 'postgres') });
  await admin.connect();
  try {
    await admin.query('CREATE DATABASE riskmon_risk');
  } finally {
    await admin.end();
  }
  return {
    env: { PG_URL, RISK_PG_URL: withDatabase(PG_URL, 'riskmon_risk'), KAFKA_BROKERS: `127.0.0.1:${kafkaPort}`, REDIS_URL: `redis://127.0.0.1:${redisPort}` },
    containers: started.map((c, i) => ({ service: specs[i][0], image: baseImage(specs[i][0] === 'pg' ? 'postgres' : specs[i][0]), id: c.getId() })),
    stop,
  };
}

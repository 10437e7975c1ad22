/**
 * Secured services for the tests of TLS, SASL and ACLs, made by the test itself: a private CA and server
 * certificates (openssl), a Redis with TLS only and an ACL user, and a single KRaft Kafka broker whose client
 * listener is SASL_SSL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; SCRAM users are written at storage format time).
 * Each lives in a temporary folder and is stopped (SIGKILL is fine: nothing in it is kept) by `stop()`.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { StackError, type ServiceState, type StackState } from '../../scripts/stack/common.ts';
import { chownToPostgres, pgDataDir, runPgTool, startPg } from '../../scripts/stack/pg.ts';
import { isRoot } from '../../scripts/stack/host.ts';
import { pickPort, pidAlive, portOpen, readPidFile, requireBinary, signal, tail, waitGone, waitUntil } from '../../scripts/stack/host.ts';
import { ensureKafkaJars, kafkaClusterId } from '../../scripts/stack/kafka.ts';

export interface Pki {
  dir: string;
  /** PEM of the CA the servers' certificates are signed by */
  caFile: string;
  /** another CA, which signed nothing here: a client trusting only it must refuse the servers */
  otherCaFile: string;
  certFile: string;
  keyFile: string;
}

function openssl(args: string[], cwd: string): void {
  const r = spawnSync(requireBinary('openssl', 'openssl', process.env), args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new StackError(`openssl ${args.join(' ')} failed:\n${r.stderr}`);
}

/** A CA, a second unrelated CA, and a server certificate for 127.0.0.1 / localhost signed by the first. */
export async function makePki(): Promise<Pki> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'riskmon-pki-'));
  for (const ca of ['ca', 'other-ca']) {
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=riskmon test ${ca}`, '-keyout', `${ca}.key`, '-out', `${ca}.pem`], dir);
  }
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', 'server.key', '-out', 'server.csr'], dir);
  await fsp.writeFile(path.join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'san.ext', '-out', 'server.pem'], dir);
  return {
    dir, caFile: path.join(dir, 'ca.pem'), otherCaFile: path.join(dir, 'other-ca.pem'),
    certFile: path.join(dir, 'server.pem'), keyFile: path.join(dir, 'server.key'),
  };
}

export interface Running { stop(): Promise<void> }

/** The configuration lines of a Redis with TLS only (no plain port) and an ACL user; the default user is off. */
function tlsRedisConf(pki: Pki, dir: string, port: number, user: { name: string; password: string }): string[] {
  return [
    'bind 127.0.0.1', 'port 0', `tls-port ${port}`, `tls-cert-file ${pki.certFile}`, `tls-key-file ${pki.keyFile}`, `tls-ca-cert-file ${pki.caFile}`,
    'tls-auth-clients no', 'protected-mode no', `dir "${dir}"`, 'save ""', 'daemonize yes', `pidfile "${path.join(dir, 'redis.pid')}"`,
    `logfile "${path.join(dir, 'redis.log')}"`, 'user default off', `user ${user.name} on >${user.password} ~* &* +@all`,
  ];
}

/** Starts redis-server on `conf` (daemonized) in `dir` and waits for its TLS port; `stop()` kills it. */
async function startRedisIn(dir: string, port: number, conf: string[], what: string): Promise<Running> {
  const server = requireBinary('redis-server', 'redis-server', process.env);
  const logFile = path.join(dir, 'redis.log');
  await fsp.writeFile(path.join(dir, 'redis.conf'), [...conf, ''].join('\n'));
  const r = spawnSync(server, [path.join(dir, 'redis.conf')], { encoding: 'utf8' });
  if (r.status !== 0) throw new StackError(`redis-server (${what}) failed:\n${r.stdout}${r.stderr}`);
  await waitUntil(() => portOpen(port), 20_000, () => `${what} did not listen on ${port}\n${tail(logFile)}`);
  return {
    async stop() {
      const pid = readPidFile(path.join(dir, 'redis.pid'));
      if (pid) { signal(pid, 'SIGKILL'); await waitGone(pid, 5_000); }
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
}

/** Redis with TLS only (no plain port) and an ACL user; the default user is off. */
export async function startTlsRedis(pki: Pki, user: { name: string; password: string }): Promise<Running & { port: number; url: string }> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'riskmon-tls-redis-'));
  const port = await pickPort(0);
  const node = await startRedisIn(dir, port, tlsRedisConf(pki, dir, port, user), 'TLS Redis');
  return { port, url: `rediss://127.0.0.1:${port}`, stop: () => node.stop() };
}

/**
 * A Redis Cluster of `masters` nodes with TLS only, on the client port and on the cluster bus (`tls-cluster`),
 * and an ACL user on every node; made with `redis-cli --tls --cluster create`. `url` lists every node.
 */
export async function startTlsRedisCluster(pki: Pki, user: { name: string; password: string }, masters = 3): Promise<Running & { ports: number[]; url: string }> {
  const nodes: Running[] = [];
  const ports: number[] = [];
  const stop = async () => { await Promise.all(nodes.map((n) => n.stop())); };
  try {
    for (let i = 0; i < masters; i++) {
      const dir = await fsp.mkdtemp(path.join(os.tmpdir(), `riskmon-tls-cluster-${i}-`));
      const port = await pickPort(0);
      const bus = await pickPort(0);
      nodes.push(await startRedisIn(dir, port, [
        ...tlsRedisConf(pki, dir, port, user), 'tls-cluster yes', 'tls-replication yes',
        'cluster-enabled yes', `cluster-port ${bus}`, `cluster-config-file "${path.join(dir, 'nodes.conf')}"`, 'cluster-node-timeout 2000',
      ], `TLS cluster node ${i}`));
      ports.push(port);
    }
    const cli = requireBinary('redis-cli', 'redis-tools', process.env);
    const tlsArgs = ['--tls', '--cacert', pki.caFile, '--user', user.name, '--pass', user.password, '--no-auth-warning'];
    const r = spawnSync(cli, [...tlsArgs, '--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-yes'], { encoding: 'utf8' });
    if (r.status !== 0) throw new StackError(`redis-cli --tls --cluster create failed:\n${r.stdout}${r.stderr}`);
    const state = (port: number) => spawnSync(cli, [...tlsArgs, '-p', String(port), 'CLUSTER', 'INFO'], { encoding: 'utf8' }).stdout;
    await waitUntil(async () => ports.every((p) => state(p).includes('cluster_state:ok')), 30_000, () => `the TLS cluster did not reach cluster_state:ok:\n${state(ports[0])}`);
  } catch (err) {
    await stop();
    throw err;
  }
  return { ports, url: ports.map((p) => `rediss://127.0.0.1:${p}`).join(','), stop };
}

export const KAFKA_ADMIN = { name: 'admin', password: 'admin-secret' };

/**
 * One KRaft node (broker + controller) whose client listener is SASL_SSL. `users` get PLAIN and SCRAM-SHA-256/512
 * credentials with their password.
 */
export async function startSaslSslKafka(pki: Pki, users: { name: string; password: string }[]): Promise<Running & { brokers: string }> {
  const java = requireBinary('java', 'openjdk-17-jre-headless', process.env);
  const jars = await ensureKafkaJars(process.env, () => {});
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'riskmon-sasl-kafka-'));
  const port = await pickPort(0);
  const controller = await pickPort(0, [port]);
  // Kafka reads a PEM keystore as the private key (PKCS#8) followed by the certificate chain
  const keystore = path.join(dir, 'keystore.pem');
  await fsp.writeFile(keystore, (await fsp.readFile(pki.keyFile, 'utf8')) + (await fsp.readFile(pki.certFile, 'utf8')));
  const all = [KAFKA_ADMIN, ...users];
  const q = (s: string) => s.replaceAll('\\', '\\\\').replaceAll('"', '\\"');
  const props = path.join(dir, 'server.properties');
  await fsp.writeFile(props, [
    'process.roles=broker,controller', 'node.id=1', `controller.quorum.voters=1@127.0.0.1:${controller}`,
    `listeners=SASL_SSL://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controller}`,
    `advertised.listeners=SASL_SSL://127.0.0.1:${port}`,
    'controller.listener.names=CONTROLLER', 'inter.broker.listener.name=SASL_SSL',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL',
    'sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512', 'sasl.mechanism.inter.broker.protocol=PLAIN',
    `listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="${KAFKA_ADMIN.name}" password="${KAFKA_ADMIN.password}" ${all.map((u) => `user_${u.name}="${q(u.password)}"`).join(' ')};`,
    'listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
    'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
    'ssl.keystore.type=PEM', `ssl.keystore.location=${keystore}`, 'ssl.client.auth=none',
    'ssl.truststore.type=PEM', `ssl.truststore.location=${pki.caFile}`,
    `log.dirs=${path.join(dir, 'data')}`, 'num.partitions=1', 'offsets.topic.replication.factor=1', 'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1', 'group.initial.rebalance.delay.ms=0', 'auto.create.topics.enable=false', '',
  ].join('\n'));
  const log4j = path.join(dir, 'log4j.properties');
  await fsp.writeFile(log4j, 'log4j.rootLogger=WARN, stdout\nlog4j.appender.stdout=org.apache.log4j.ConsoleAppender\nlog4j.appender.stdout.layout=org.apache.log4j.PatternLayout\nlog4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n');
  const jvm = ['-Xms128m', '-Xmx384m', '-XX:TieredStopAtLevel=1', '-Djava.awt.headless=true', `-Dlog4j.configuration=file:${log4j}`];
  const scram = all.flatMap((u) => ['SCRAM-SHA-256', 'SCRAM-SHA-512'].flatMap((m) => ['--add-scram', `${m}=[name=${u.name},password=${u.password}]`]));
  const fmt = spawnSync(java, [...jvm, '-cp', `${jars}/*`, 'kafka.tools.StorageTool', 'format', '-t', kafkaClusterId(), '-c', props, ...scram], { encoding: 'utf8' });
  if (fmt.status !== 0) throw new StackError(`kafka storage format (SCRAM users) failed:\n${fmt.stdout}${fmt.stderr}`);
  const logFile = path.join(dir, 'kafka.log');
  const out = fs.openSync(logFile, 'a');
  const child = spawn(java, [...jvm, '-cp', `${jars}/*`, 'kafka.Kafka', props], { detached: true, stdio: ['ignore', out, out], cwd: dir });
  fs.closeSync(out);
  child.unref();
  const pid = child.pid!;
  await waitUntil(async () => {
    if (!pidAlive(pid)) throw new StackError(`SASL_SSL Kafka exited\n${tail(logFile)}`);
    return /Kafka Server started|KafkaRaftServer.*started/.test(fs.readFileSync(logFile, 'utf8')) || (await portOpen(port));
  }, 120_000, () => `SASL_SSL Kafka did not start\n${tail(logFile)}`);
  return {
    brokers: `127.0.0.1:${port}`,
    async stop() {
      signal(pid, 'SIGKILL');
      await waitGone(pid, 10_000);
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
}

/** A PostgreSQL of its own (the stack's launcher, in a temporary folder) with TLS on, the server certificate of `pki`. */
export async function startTlsPostgres(pki: Pki): Promise<Running & { port: number }> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'riskmon-tls-pg-'));
  const state: StackState = { services: {}, external: {}, holders: [] };
  const st: ServiceState = { port: await pickPort(0) };
  await startPg(dir, state, st, process.env);
  const base = state.pgBase!;
  const cert = path.join(base, 'server.crt');
  const key = path.join(base, 'server.key');
  await fsp.copyFile(pki.certFile, cert);
  await fsp.copyFile(pki.keyFile, key);
  await fsp.chmod(key, 0o600); // PostgreSQL refuses a key others can read
  if (isRoot()) chownToPostgres(cert, key);
  const c = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${st.port}/postgres` });
  await c.connect();
  try {
    await c.query('ALTER SYSTEM SET ssl = on');
    await c.query(`ALTER SYSTEM SET ssl_cert_file = '${cert}'`);
    await c.query(`ALTER SYSTEM SET ssl_key_file = '${key}'`);
    await c.query('SELECT pg_reload_conf()');
  } finally {
    await c.end();
  }
  await waitUntil(async () => {
    const t = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${st.port}/postgres?sslmode=verify-full&sslrootcert=${encodeURIComponent(pki.caFile)}` });
    try { await t.connect(); return true; } catch { return false; } finally { await t.end().catch(() => {}); }
  }, 20_000, () => 'PostgreSQL did not accept TLS connections after the reload');
  return {
    port: st.port,
    async stop() {
      runPgTool(state, 'pg_ctl', ['stop', '-D', pgDataDir(state), '-m', 'immediate']);
      await fsp.rm(base, { recursive: true, force: true });
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
}

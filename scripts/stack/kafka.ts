/** Kafka 3.9 in KRaft mode: jars resolved with Maven, one combined broker+controller node. */
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { createKafka, kafkaConfigOf } from '../../lib/kafka/index.ts';
import { KAFKA_VERSION, POM, REPO_ROOT, ServiceState, StackError, TIMEOUT_MS } from './common.ts';
import { requireBinary, tail, waitUntil } from './host.ts';

export async function startKafka(dir: string, st: ServiceState, env: NodeJS.ProcessEnv, log: (line: string) => void): Promise<number> {
  const java = requireBinary('java', 'openjdk-17-jre-headless', env);
  const jars = await ensureKafkaJars(env, log);
  const base = path.join(dir, 'kafka');
  const data = path.join(base, 'data');
  const props = path.join(base, 'server.properties');
  const log4j = path.join(base, 'log4j.properties');
  const logFile = path.join(base, 'kafka.log');
  await fsp.mkdir(data, { recursive: true });
  await fsp.writeFile(
    props,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${st.controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${st.port},CONTROLLER://127.0.0.1:${st.controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${st.port}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=PLAINTEXT',
      'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
      `log.dirs=${data}`,
      'num.partitions=12',
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=12',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'group.initial.rebalance.delay.ms=0',
      'log.retention.hours=216',
      'auto.create.topics.enable=true',
      '',
    ].join('\n'),
  );
  await fsp.writeFile(
    log4j,
    [
      'log4j.rootLogger=WARN, stdout',
      'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
      'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
      'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
      // Start/stop milestones, so the log tail on failure says how far the broker got.
      'log4j.logger.kafka.server.KafkaRaftServer=INFO',
      'log4j.logger.kafka.server.BrokerServer=INFO',
      'log4j.logger.kafka.server.ControllerServer=INFO',
      '',
    ].join('\n'),
  );
  const classpath = `${jars}/*`;
  const jvm = [...(env.KAFKA_HEAP_OPTS ?? '-Xms256m -Xmx1g').split(/\s+/).filter(Boolean), '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-Djava.awt.headless=true', `-Dlog4j.configuration=file:${log4j}`];
  if (!fs.existsSync(path.join(data, 'meta.properties'))) {
    const r = spawnSync(java, [...jvm, '-cp', classpath, 'kafka.tools.StorageTool', 'format', '--ignore-formatted', '-t', kafkaClusterId(), '-c', props], { encoding: 'utf8' });
    if (r.status !== 0) throw new StackError(`kafka storage format failed:\n${r.stdout}${r.stderr}`);
  }
  if (fs.existsSync(logFile)) await fsp.rename(logFile, `${logFile}.1`);
  const out = fs.openSync(logFile, 'a');
  const child = spawn(java, [...jvm, '-cp', classpath, 'kafka.Kafka', props], { detached: true, stdio: ['ignore', out, out], cwd: base });
  fs.closeSync(out);
  child.unref();
  const pid = child.pid;
  if (!pid) throw new StackError(`could not spawn ${java}`);
  st.pid = pid;
  let exited: number | null = null;
  child.on('exit', (code) => (exited = code ?? -1));
  await waitUntil(
    async () => {
      if (exited !== null) throw new StackError(`Kafka exited with code ${exited}\n--- ${logFile} (tail) ---\n${tail(logFile)}`);
      return kafkaAnswers(`127.0.0.1:${st.port}`);
    },
    TIMEOUT_MS.kafka,
    () => `Kafka did not answer on 127.0.0.1:${st.port} within ${TIMEOUT_MS.kafka / 1000}s\n--- ${logFile} (tail) ---\n${tail(logFile)}`,
  );
  child.removeAllListeners('exit');
  return pid;
}

/** Kafka's Uuid: 16 random bytes, URL-safe base64 without padding; Kafka never issues ids starting with '-'. */
export function kafkaClusterId(): string {
  for (;;) {
    const id = crypto.randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

export async function kafkaAnswers(broker: string): Promise<boolean> {
  const admin = createKafka(kafkaConfigOf(broker), { clientId: 'riskmon-stack', connectionTimeoutMs: 1000, retries: 0 }).admin();
  try {
    await admin.connect();
    await admin.listTopics();
    return true;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/** Resolves Kafka's jars once into .riskmon/cache (Maven keeps its own cache in ~/.m2; try offline first). */
export async function ensureKafkaJars(env: NodeJS.ProcessEnv, log: (line: string) => void): Promise<string> {
  const jars = path.resolve(env.RISKMON_KAFKA_JARS ?? path.join(REPO_ROOT, '.riskmon', 'cache', `kafka-${KAFKA_VERSION}`));
  if (fs.existsSync(path.join(jars, '.complete'))) return jars;
  const mvn = requireBinary('mvn', 'maven', env);
  log(`kafka: resolving org.apache.kafka:kafka_2.13:${KAFKA_VERSION} with Maven into ${jars}`);
  const tmp = `${jars}.tmp-${process.pid}`;
  await fsp.rm(tmp, { recursive: true, force: true });
  const args = ['-q', '-B', '-f', POM, `-Dkafka.version=${KAFKA_VERSION}`, 'dependency:copy-dependencies', `-DoutputDirectory=${tmp}`];
  let r = spawnSync(mvn, ['-o', ...args], { encoding: 'utf8' });
  if (r.status !== 0) r = spawnSync(mvn, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new StackError(`Maven could not resolve Kafka ${KAFKA_VERSION} (needs Maven Central or ~/.m2):\n${r.stdout}${r.stderr}`);
  await fsp.writeFile(path.join(tmp, '.complete'), `${KAFKA_VERSION}\n`);
  await fsp.rm(jars, { recursive: true, force: true });
  await fsp.rename(tmp, jars).catch(async (err) => {
    // A parallel run finished first: use its copy.
    if (!fs.existsSync(path.join(jars, '.complete'))) throw err;
    await fsp.rm(tmp, { recursive: true, force: true });
  });
  return jars;
}

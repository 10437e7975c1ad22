/**
 * `npm run demo`: the whole system from a fresh clone, in one command.
 *
 *  1. starts local PostgreSQL, Kafka and Redis (or uses PG_URL, KAFKA_BROKERS, REDIS_URL, RISK_PG_URL from env);
 *  2. creates fresh demo databases, the schemas, topic names and a Redis prefix of its own;
 *  3. starts `riskmon cdc`, `aggregate` and `api`, each its own process, so the slot exists before any history is written;
 *  4. loads 15 days of reference history with weekly shapes (a B2B merchant sells a quarter as much on Sundays, leisure
 *     more at weekends; Korean public holidays that fall in them shaped as holidays) and injected anomalies (through
 *     the real pipeline: WAL → Kafka → Redis): 15 days give every weekday two earlier same weekdays, so the volume
 *     rules' same-weekday baselines are in use from the start;
 *  5. starts `riskmon alerting` once the history is in, then runs the live generator with the same anomalies, and a local webhook receiver that prints what riskmon
 *     sends to Slack (unless RISKMON_SLACK_WEBHOOK_URL points at a real one), and one playing the settlement system
 *     that verifies and prints the signed payout holds and releases (unless RISKMON_ACTION_WEBHOOK_URL is set);
 *  6. prints the dashboard URL with an API key, and keeps running until Ctrl-C.
 *
 * Scale: RISKMON_DEMO_TX_PER_DAY (default 600,000) over RISKMON_DEMO_MERCHANTS (default 20,000) — a fifth of the
 * reference workload with the same transactions per merchant, so every scenario is as detectable as at full scale
 * and the history passes through the pipeline in a few minutes on 2 cores. RISKMON_DEMO_TPS: live rate (default: the history's rate at
 * the minute the demo starts, so live traffic looks like the same hour of earlier days to the volume rules);
 * RISKMON_DEMO_DAYS: days of history (default 15; below 15 the volume rules fall back to the 7-day mean).
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createKafka, kafkaConfigOf } from '../lib/kafka/index.ts';
import { migrate } from '../lib/migrate.ts';
import { freePort } from '../lib/net.ts';
import { dayStart } from '../lib/time.ts';
import { expectedPerMinute } from './generate/distribution.ts';
import { pickMerchants, Workload } from './generate/index.ts';
import { stackUp, withDatabase } from './stack/index.ts';
import { dropInactiveSlots, FakeSlack, spawnRiskmon, waitExit, waitFor, WebhookReceiver } from '../test/harness/index.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const logDir = join(root, '.riskmon', 'demo');
const say = (s: string) => console.log(`[demo] ${s}`);

function num(name: string, def: number): number {
  const raw = process.env[name];
  if (!raw) return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}=${raw} must be a positive number`);
  return n;
}

async function recreateDatabase(adminUrl: string, name: string): Promise<string> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    await dropInactiveSlots(c, name);
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${name}`);
  } finally { await c.end(); }
  return withDatabase(adminUrl, name);
}

/** A local webhook receiver standing in for Slack's servers: it prints each message it receives. */
async function slackPrinter(): Promise<string> {
  const slack = await new FakeSlack({
    onRequest: (r) => console.log(`[slack] ${r.body?.text ?? (r.body ? JSON.stringify(r.body) : r.text).slice(0, 200)}`),
  }).start();
  return slack.unref().url;
}

/**
 * A local receiver standing in for the settlement system: it verifies each payout action's signature with the
 * demo's secret, dedupes by idempotency key and prints it. Returns the env that points riskmon at it.
 */
async function settlementPrinter(): Promise<NodeJS.ProcessEnv> {
  const secret = randomBytes(32).toString('hex');
  const receiver = await new WebhookReceiver({
    secrets: [secret],
    onEvent: (e, r) => console.log(`[settlement] ${e.type} merchant ${e.merchantId} (hold ${e.holdId}) by ${e.actor}: "${e.reason}" — signature ${r.verified ? 'verified' : 'INVALID'}, idempotency-key ${r.idempotencyKey}`),
  }).start();
  return { RISKMON_ACTION_WEBHOOK_URL: receiver.unref().url, RISKMON_ACTION_WEBHOOK_SECRET: secret };
}

function riskmon(args: string[], env: NodeJS.ProcessEnv, logFile: string | null): ChildProcess {
  return spawnRiskmon(args, logFile ? { env, logFile } : { env, stdout: 'inherit', stderr: 'inherit' });
}

/** Exit code; a signal counts as a failure. */
const exited = async (child: ChildProcess): Promise<number> => (await waitExit(child)) ?? 1;

async function main(): Promise<number> {
  mkdirSync(logDir, { recursive: true });
  const txPerDay = num('RISKMON_DEMO_TX_PER_DAY', 600_000);
  const merchants = num('RISKMON_DEMO_MERCHANTS', 20_000);
  // live traffic at the history's own rate for this time of day: a flat rate several times it is a volume spike
  const tps = num('RISKMON_DEMO_TPS', Math.max(2, Math.round(expectedPerMinute(Date.now(), txPerDay, process.env.RISKMON_TZ ?? 'Asia/Seoul') / 60)));
  const days = num('RISKMON_DEMO_DAYS', 15);

  say('starting PostgreSQL, Kafka and Redis (npm run stack -- up) …');
  const stack = await stackUp({ log: (l) => say(l) });
  const run = Date.now().toString(36);
  const pgUrl = await recreateDatabase(stack.PG_URL, 'riskmon_demo_source');
  const riskPgUrl = await recreateDatabase(stack.RISK_PG_URL, 'riskmon_demo_risk');
  await migrate(pgUrl, 'source');
  await migrate(riskPgUrl, 'risk');
  const port = await freePort(Number(process.env.RISKMON_HTTP_PORT ?? 8080));
  const viewer = `viewer-${randomBytes(24).toString('base64url')}`;
  const admin = `admin-${randomBytes(24).toString('base64url')}`;
  const analyst = `analyst-${randomBytes(24).toString('base64url')}`;
  const publicUrl = process.env.RISKMON_PUBLIC_URL ?? `http://127.0.0.1:${port}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PG_URL: pgUrl, RISK_PG_URL: riskPgUrl, KAFKA_BROKERS: stack.KAFKA_BROKERS, REDIS_URL: stack.REDIS_URL,
    RISKMON_TOPIC: process.env.RISKMON_TOPIC ?? `riskmon.demo.${run}`,
    RISKMON_DLQ_TOPIC: process.env.RISKMON_DLQ_TOPIC ?? `riskmon.demo.${run}.dlq`,
    RISKMON_GROUP: process.env.RISKMON_GROUP ?? `riskmon-demo-${run}`,
    RISKMON_SLOT: process.env.RISKMON_SLOT ?? 'riskmon_demo',
    RISKMON_REDIS_PREFIX: process.env.RISKMON_REDIS_PREFIX ?? `demo${run}`,
    RISKMON_HTTP_PORT: String(port),
    // Named keys: the name is the actor the audit trail and the triage history record.
    RISKMON_API_KEYS: process.env.RISKMON_API_KEYS ?? `${viewer}:viewer,${admin}:admin:Demo Admin,${analyst}:analyst:Demo Analyst`,
    RISKMON_PUBLIC_URL: publicUrl,
    RISKMON_SLACK_WEBHOOK_URL: process.env.RISKMON_SLACK_WEBHOOK_URL ?? await slackPrinter(),
    ...(process.env.RISKMON_ACTION_WEBHOOK_URL ? {} : await settlementPrinter()),
  };
  const adminKey = process.env.RISKMON_API_KEYS ? process.env.RISKMON_API_KEYS.split(',')[0].split(':')[0] : admin;

  // Each component in its own process, as in production (and so they use both cores). The rules start only after
  // the history has passed through the pipeline: evaluated on half-loaded history, today would look like a collapse.
  const children: ChildProcess[] = [];
  let stopping = false;
  const stopAll = () => { stopping = true; for (const c of children) if (c.exitCode === null) c.kill('SIGTERM'); };
  process.once('SIGINT', stopAll);
  process.once('SIGTERM', stopAll);
  const component = (name: string) => {
    const child = riskmon([name], env, join(logDir, `${name}.log`));
    children.push(child);
    void exited(child).then((code) => {
      if (!stopping) { say(`riskmon ${name} exited with ${code}: see ${join(logDir, `${name}.log`)}; stopping the demo`); stopAll(); }
    });
    return child;
  };
  say(`starting riskmon cdc, aggregate and api; logs in ${logDir}`);
  const cdc = component('cdc');
  component('aggregate');
  component('api');

  // The cdc's slot must exist before history is written, or the history would not pass through the WAL stream.
  const src = new pg.Client({ connectionString: pgUrl });
  await src.connect();
  await waitFor(async () => cdc.exitCode === null && (await src.query(
    `SELECT 1 FROM pg_replication_slots s JOIN pg_stat_replication r ON r.pid = s.active_pid WHERE s.slot_name = $1 AND r.state = 'streaming'`,
    [env.RISKMON_SLOT])).rowCount === 1, { timeoutMs: 120_000, intervalMs: 1000, message: 'the cdc to stream' });

  // Anomalies: a cancel surge on a normal and on a hot merchant for the last 50 minutes, a big merchant's volume
  // falling to 30% and another's full stop since local midnight. The live generator keeps them going.
  // Merchants are named by id (not alias) so the backfill and the live run surely pick the same ones.
  const who = pickMerchants(7, merchants, txPerDay);
  // The volume anomalies start at local midnight: starting earlier would cut into the 7-day baseline too, and a
  // merchant just above 1B KRW a day could fall out of volume_drop's eligibility.
  const midnight = new Date(dayStart(Date.now(), process.env.RISKMON_TZ || 'Asia/Seoul')).toISOString();
  // A bust-out: a merchant selling about 100M KRW a day (none of the others) stops selling while its buyers cancel
  // payments already paid out (payouts are D+2), 60 cancels per usual transaction: in 50 minutes that is about two
  // days of its sales, more than the day and a half not yet paid out, so it owes and the receivable rule fires soon.
  const w = new Workload(merchants);
  const taken = new Set([who.normal, who.hot, who.bigVolume, who.bigVolumeStop]);
  let bustOut = who.normal + 10;
  for (let id = 1; id <= merchants; id++) {
    if (!taken.has(id) && w.expectedDailyVolume(id, txPerDay) <= 100_000_000) { bustOut = id; break; }
  }
  // A weekday-shaped merchant to look at: the biggest B2B-like ("general") merchant of no scenario.
  let weekly = 0;
  for (let id = 1, best = 0; id <= merchants; id++) {
    const v = w.expectedDailyVolume(id, txPerDay);
    if (!taken.has(id) && id !== bustOut && w.profile(id).category === 'general' && v > best) { best = v; weekly = id; }
  }
  const scenarios = [`cancel_surge:${who.normal}:-50m:10`, `cancel_surge:${who.hot}:-50m`, `volume_drop:${who.bigVolume}:${midnight}`, `full_stop:${who.bigVolumeStop}:${midnight}`, `bust_out:${bustOut}:-50m:60`];
  const scenarioArgs = scenarios.flatMap((s) => ['--scenario', s]);
  say(`loading ${days} days of history with weekly shapes (${merchants.toLocaleString()} merchants, ${txPerDay.toLocaleString()} transactions a day) …`);
  const backfill = riskmon(['generate', 'backfill', '--days', String(days), '--merchants', String(merchants), '--tx-per-day', String(txPerDay), '--seed', '7', '--week-shapes', '1', ...scenarioArgs], env, null);
  children.push(backfill);
  if (await exited(backfill) !== 0) { stopAll(); return 1; }

  say('waiting for the pipeline to take in the history …');
  const kafka = createKafka(kafkaConfigOf(stack.KAFKA_BROKERS), { clientId: 'riskmon-demo' });
  const kadmin = kafka.admin();
  await kadmin.connect();
  await waitFor(async () => {
    const slot = await src.query(`SELECT pg_current_wal_lsn() - confirmed_flush_lsn AS lag FROM pg_replication_slots WHERE slot_name = $1`, [env.RISKMON_SLOT]);
    const ends = await kadmin.fetchTopicOffsets(env.RISKMON_TOPIC!);
    const done = await kadmin.fetchOffsets({ groupId: env.RISKMON_GROUP!, topics: [env.RISKMON_TOPIC!] });
    const committed = new Map(done[0].partitions.map((p) => [p.partition, Number(p.offset)]));
    const lag = ends.reduce((s, p) => s + Math.max(0, Number(p.high) - Math.max(0, committed.get(p.partition) ?? 0)), 0);
    process.stdout.write(`\r[demo]   slot lag ${slot.rows[0]?.lag ?? '?'} bytes, consumer lag ${lag} messages   `);
    return Number(slot.rows[0]?.lag ?? 1) < 1_000_000 && lag < 1000;
  }, { timeoutMs: 30 * 60_000, intervalMs: 1000, message: 'the aggregator to catch up' });
  process.stdout.write('\n');
  await kadmin.disconnect();
  await src.end();

  say('starting riskmon alerting (rules, alerts, Slack)');
  component('alerting');
  say(`live traffic at ${tps} TPS with the same anomalies`);
  const live = riskmon(['generate', 'live', '--tps', String(tps), '--duration', String(7 * 86400), '--merchants', String(merchants), '--seed', '7', '--week-shapes', '1', ...scenarioArgs], env, join(logDir, 'generator.log'));
  children.push(live);

  console.log(`
  riskmon is running.

    dashboard   ${publicUrl}/?key=${encodeURIComponent(adminKey)}
    API key     ${adminKey} (admin)${process.env.RISKMON_API_KEYS ? '' : `, ${viewer} (viewer)`}${process.env.RISKMON_API_KEYS ? '' : `
    analyst     ${publicUrl}/?key=${encodeURIComponent(analyst)} (acknowledge, assign, note, close alerts)`}
    REST        curl -H 'Authorization: Bearer ${adminKey}' ${publicUrl}/api/alerts
    OpenAPI     ${publicUrl}/docs
    status      PG_URL=${pgUrl} KAFKA_BROKERS=${stack.KAFKA_BROKERS} REDIS_URL=${stack.REDIS_URL} RISK_PG_URL=${riskPgUrl} RISKMON_SLOT=${env.RISKMON_SLOT} RISKMON_GROUP=${env.RISKMON_GROUP} RISKMON_TOPIC=${env.RISKMON_TOPIC} RISKMON_REDIS_PREFIX=${env.RISKMON_REDIS_PREFIX} npx riskmon status
    logs        ${logDir}

  Injected anomalies (they should alert, and nothing else):
    cancel_rate_spike  merchant ${who.normal} (a normal merchant, cancels ×10 for the last 50 min) and ${who.hot} (a hot merchant, ×6)
    volume_drop        merchant ${who.bigVolume} (≥ 1B KRW a day, at 30% since midnight) and ${who.bigVolumeStop} (full stop)
    receivable         merchant ${bustOut} (busting out for the last 50 min: no sales, its buyers cancel payments already
                       paid out; payouts are D+2) — ₩ at risk in the alert feed, hold it from the alert page
  Weeks: merchant ${weekly} sells like a B2B supplier (a quarter as much on Sundays); its page shows today against the
  same weekdays of the last weeks, which the volume rules use (${publicUrl}/?key=${encodeURIComponent(adminKey)}#/merchants/${weekly}).
  Slack messages are printed here as [slack] lines; a payout hold or release (the analyst key, on an alert or a
  merchant page) reaches the local settlement receiver and is printed as a [settlement] line. Ctrl-C stops riskmon; \`npm run stack -- down\` stops the services.
`);
  const codes = await Promise.all(children.map(exited));
  return codes.some((c) => c !== 0) && !stopping ? 1 : 0;
}

main().then((code) => { process.exitCode = code; }, (err) => { console.error(`[demo] failed: ${err.message}`); process.exitCode = 1; });

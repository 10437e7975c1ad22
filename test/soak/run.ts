/**
 * The soak: the whole system as separate processes on a stack of its own, under live load with bursts, late rows,
 * two injected anomalies and a local midnight passing, while every component is SIGKILLed and
 * restarted and Kafka, Redis and PostgreSQL are restarted. Then it checks what must hold after any of that:
 * - every bucket of every merchant (1m over the last 36 h, 1h, 1d) equals the SQL GROUP BY over the source;
 * - each injected anomaly raised exactly one alert, nothing else alerted, and Slack got each alert exactly once;
 * - nothing is left unacknowledged: the slot's confirmed_flush_lsn reaches the WAL position taken after the load
 *   stopped and its lag returns to ~0, the consumer group's lag is 0, and the dead-letter topic is empty.
 *
 * - every change is on the topic exactly once, in commit order within its partition.
 * With `topology: 'replicated'` the stack is three KRaft brokers (RF 3, min ISR 2) and a Redis Cluster (or, with
 * `redisMode: 'sentinel'`, a Sentinel set) from scripts/stack/replicated.ts; the Kafka and Redis restarts become
 * kill -9 of the broker leading a partition of the change topic (then its restart) and kill -9 of a Redis master
 * whose replica missed its last writes (the replica promoted, the old master back as a replica): test/soak/replicated.ts.
 *
 * It runs at a chosen instant: every process, the history and the live traffic share one clock (RISKMON_CLOCK_START,
 * lib/clock.ts) set so that the chosen local midnight (by default the one that starts 2026-11-01 in New York, a
 * month's end and the day daylight saving time ends) passes 40% into the live phase, whatever the real hour.
 *
 * Used by test/soak.int.test.ts (a few minutes, in `npm test`) and scripts/soak.ts (the long form).
 * The stack lives in `dir` and is restarted here, so it must never be the shared development or test stack.
 */
import { join } from 'node:path';
import pg from 'pg';
import { createBucketReader } from '../../aggregator/store/index.ts';
import { pendingNotifications } from '../../alerting/risk-store/index.ts';
import { connections, readConfig } from '../../lib/config.ts';
import { createKafka, kafkaConfigOf } from '../../lib/kafka/index.ts';
import { createRedis, type RedisClient } from '../../lib/redis.ts';
import { migrate } from '../../lib/migrate.ts';
import { freePort } from '../../lib/net.ts';
import { clockOf, clockStartEnv, parseClockStart } from '../../lib/clock.ts';
import { DAY, dayKey, dayStart, HOUR, MINUTE, minuteStart } from '../../lib/time.ts';
import { backfill, ensureMerchants, parseScenario, pickMerchants } from '../../scripts/generate/index.ts';
import { restartService, stackDown, stackUp, withDatabase, type ServiceName, type StackEnv } from '../../scripts/stack/index.ts';
import { replicatedDir, replicatedDown, replicatedUp } from '../../scripts/stack/replicated.ts';
import { FakeSlack, runEnv, sleep, waitFor } from '../harness/index.ts';
import { diffAgainstReader, sqlTruth } from '../harness/truth.ts';
import { Fleet, type Component } from './fleet.ts';
import { failRedisMaster, killLeader, type RedisFailoverMode } from './replicated.ts';
import { auditTopic } from './topic.ts';
import { Traffic } from './traffic.ts';

export interface SoakOptions {
  /** Length of the live phase (faults happen inside it). */
  minutes: number;
  tps: number;
  burstTps: number;
  /** Data folder of the soak's own stack. */
  dir: string;
  merchants?: number;
  txPerDay?: number;
  seed?: number;
  /** `replicated`: three brokers and a Redis Cluster (or Sentinel set), with their failovers among the faults. */
  topology?: 'single' | 'replicated';
  /** Redis of the replicated topology (default cluster). */
  redisMode?: RedisFailoverMode;
  /** The zone whose local midnight passes during the live phase (default America/New_York). */
  tz?: string;
  /** That midnight, ISO-8601 with its offset (default 2026-11-01T00:00:00-04:00). */
  midnight?: string;
  /** Leave the stack running afterwards (default: stop it). */
  keepStack?: boolean;
  log?: (line: string) => void;
}

export interface SoakCheck { name: string; ok: boolean; detail: string }
export interface SoakResult {
  ok: boolean;
  checks: SoakCheck[];
  faults: { at: string; what: string; tookMs: number }[];
  figures: Record<string, unknown>;
  logDir: string;
}

const API_KEY = 'soak-admin-key-0123456789abcdef';
const SERVICES_OF_STACK = ['PG_URL', 'RISK_PG_URL', 'KAFKA_BROKERS', 'REDIS_URL'] as const;
type Fault = { kind: 'kill'; target: Component } | { kind: 'restart'; target: ServiceName } | { kind: 'kafka-leader' } | { kind: 'redis-master' };
const PARTITIONS = 12;

/** waitFor with the soak's wording: what, how long, how, how often (1 s). */
const until = <T>(what: string, timeoutMs: number, fn: () => Promise<T>, intervalMs = 1000) => waitFor(fn, { timeoutMs, intervalMs, message: what });


export async function runSoak(opts: SoakOptions): Promise<SoakResult> {
  const log = opts.log ?? ((l: string) => console.log(`[soak] ${l}`));
  const merchants = opts.merchants ?? 2000;
  const txPerDay = opts.txPerDay ?? 60_000;
  const seed = opts.seed ?? 11;
  const t0 = Date.now();
  const checks: SoakCheck[] = [];
  const faults: SoakResult['faults'] = [];
  const topology = opts.topology ?? 'single';
  const redisMode = opts.redisMode ?? 'cluster';
  const figures: Record<string, unknown> = { topology, ...(topology === 'replicated' ? { redisMode } : {}), minutes: opts.minutes, tps: opts.tps, burstTps: opts.burstTps, merchants, txPerDay };
  const runId = new Date(t0).toISOString().replace(/[-:.TZ]/g, '').slice(0, 14);
  const logDir = join(opts.dir, 'soak-logs', runId);

  // The clock every part uses, two settings of one timeline. The history goes in on one that starts an hour before
  // the chosen midnight; however long that takes (the stack, the history through the pipeline: minutes), the
  // processes then restart on the one that puts the midnight 40% into the live phase (a jump forward, never back).
  const tz = opts.tz ?? 'America/New_York';
  const midnight = Date.parse(opts.midnight ?? '2026-11-01T00:00:00-04:00');
  if (!Number.isFinite(midnight) || dayStart(midnight, tz) !== midnight) throw new Error(`soak: ${opts.midnight} is not a local midnight in ${tz}`);
  const liveAt = midnight - opts.minutes * MINUTE * 0.4;
  let clockStart = clockStartEnv(liveAt - HOUR, t0);
  let timeline = clockOf(parseClockStart(clockStart));
  const clock = () => timeline();
  figures.tz = tz;
  figures.midnight = new Date(midnight).toISOString();
  log(`history clock: ${clockStart} (RISKMON_CLOCK_START); local midnight in ${tz} (${dayKey(midnight, tz)} begins) at ${figures.midnight}`);

  // Our own stack: URLs in this process's environment (a test run's stack) must not be taken as external.
  const stackInputEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const k of SERVICES_OF_STACK) delete stackInputEnv[k];
  // Replicated: the brokers and Redis nodes count as services "from the environment", so stackUp starts only PostgreSQL.
  const repDir = replicatedDir(opts.dir);
  const rep = topology === 'replicated'
    ? await replicatedUp(repDir, { parts: ['kafka', redisMode], log: (l) => log(`stack: ${l}`) })
    : null;
  const redisEnv: NodeJS.ProcessEnv = !rep ? {}
    : redisMode === 'cluster' ? { RISKMON_REDIS_MODE: 'cluster', REDIS_URL: rep.REDIS_CLUSTER_URL }
    : { RISKMON_REDIS_MODE: 'sentinel', REDIS_URL: rep.REDIS_SENTINEL_URL, RISKMON_REDIS_SENTINEL_NAME: rep.RISKMON_REDIS_SENTINEL_NAME };
  const stack: StackEnv = await stackUp({
    dir: opts.dir, env: rep ? { ...stackInputEnv, KAFKA_BROKERS: rep.KAFKA_BROKERS, REDIS_URL: redisEnv.REDIS_URL } : stackInputEnv, log: (l) => log(`stack: ${l}`),
  });
  figures.stackUpS = (Date.now() - t0) / 1000;

  const fleet = new Fleet(logDir, log);
  const slackHook = new FakeSlack();
  const slack = slackHook.received;
  let redis: RedisClient | null = null;
  let traffic: Traffic | null = null;
  try {
    // Fresh databases per run, so a kept stack can be reused.
    const admin = new pg.Client({ connectionString: withDatabase(stack.PG_URL, 'postgres') });
    await admin.connect();
    const srcDb = `soak_${runId}`;
    const riskDb = `soak_risk_${runId}`;
    await admin.query(`CREATE DATABASE ${srcDb}`);
    await admin.query(`CREATE DATABASE ${riskDb}`);
    await admin.end();
    const pgUrl = withDatabase(stack.PG_URL, srcDb);
    const riskUrl = withDatabase(stack.PG_URL, riskDb);
    await migrate(pgUrl, 'source');
    await ensureMerchants(pgUrl, merchants);

    await slackHook.start();
    const apiPort = await freePort();
    const name = `soak_${runId}`;
    const env: NodeJS.ProcessEnv = {
      ...stackInputEnv, PG_URL: pgUrl, RISK_PG_URL: riskUrl, KAFKA_BROKERS: stack.KAFKA_BROKERS, REDIS_URL: stack.REDIS_URL,
      ...runEnv(name), RISKMON_TZ: tz, RISKMON_CLOCK_START: clockStart, RISKMON_HTTP_PORT: String(apiPort), RISKMON_API_KEYS: `${API_KEY}:admin`,
      RISKMON_SLACK_WEBHOOK_URL: slackHook.url,
      RISKMON_SLACK_MIN_INTERVAL_MS: '100', RISKMON_LOG_LEVEL: 'info', RISKMON_PARTITIONS: String(PARTITIONS), ...redisEnv,
      // The scale's thresholds, as in test/pipeline.int.test.ts.
      RISKMON_RULES: JSON.stringify({
        version: 'soak-1',
        // The live phase runs many times the history's per-merchant rate and crosses a local midnight: a stricter
        // significance guard and the default 30 minutes before volume_drop judges a new day keep chance out of
        // "nothing else alerted"; the injected anomalies are far beyond both.
        cancel_rate_spike: { minCancels: 15, maxPValue: 1e-6 },
        volume_drop: { minDailyAmount: 50_000_000 },
        // That same live rate is a bust-out by definition (every busy merchant's hour ≥ 5× its history's): the
        // soak checks exactness and the injected anomalies, so volume_spike is off here.
        volume_spike: { enabled: false },
      }),
    };
    redis = createRedis(readConfig(connections('redisUrl'), env), { maxRetriesPerRequest: null });
    redis.on('error', () => {}); // Redis is restarted or fails over on purpose; commands wait for the reconnect
    const reader = createBucketReader(redis, { prefix: name, partitions: PARTITIONS, hotShards: 8, tz, now: clock });
    const base = `http://127.0.0.1:${apiPort}`;
    const get = async <T>(path: string): Promise<T> => {
      const r = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${API_KEY}` } });
      if (!r.ok) throw new Error(`GET ${path}: ${r.status}`);
      return (await r.json()) as T;
    };

    // 1. cdc + aggregate, then 8 days of history with both anomalies already under way.
    fleet.start('cdc', env);
    fleet.start('aggregate', env);
    fleet.start('api', env);
    const src = new pg.Pool({ connectionString: pgUrl, max: 2 });
    src.on('error', () => {});
    await until('cdc streaming', 120_000, async () => (await src.query(`SELECT 1 FROM pg_replication_slots s JOIN pg_stat_replication r ON r.pid = s.active_pid
      WHERE s.slot_name = $1 AND r.state = 'streaming'`, [name])).rowCount === 1);
    const now = liveAt; // the history ends where the live traffic starts
    const who = pickMerchants(seed, merchants, txPerDay);
    const ctx = { now, merchants, resolveAlias: (a: 'normal' | 'hot' | 'big' | 'big2') => ({ normal: who.normal, hot: who.hot, big: who.bigVolume, big2: who.bigVolumeStop })[a] };
    const scenarios = [parseScenario('cancel_surge:hot:-50m:10', ctx), parseScenario('full_stop:big2:-24h', ctx)];
    const expected = [`cancel_rate_spike:${who.hot}`, `volume_drop:${who.bigVolumeStop}`].sort();
    figures.expectedAlerts = expected;
    const tb = Date.now();
    const bf = await backfill(pgUrl, { days: 8, end: now, seed, merchants, txPerDay, tz, scenarios });
    figures.backfill = { payments: bf.payments, cancels: bf.cancels, rowsPerSecond: Math.round(bf.rowsPerSecond) };
    figures.backfillS = (Date.now() - tb) / 1000;
    const dayTruth = await sqlTruth(pgUrl, '1d', tz);
    await until('history in the day buckets', 300_000, async () => (await diffAgainstReader(reader, dayTruth, '1d', now - 10 * DAY, now + DAY)).length === 0, 2000);
    figures.catchUpS = (Date.now() - tb) / 1000;
    log(`history in: backfill ${figures.backfillS} s, through the pipeline ${figures.catchUpS} s`);

    // 2. the live clock (cdc, aggregate and api restart on it), alerting after the catch-up; live traffic with bursts and faults.
    if (clock() > liveAt) throw new Error(`soak: the history took until ${new Date(clock()).toISOString()}, past the live phase's start ${new Date(liveAt).toISOString()}`);
    clockStart = clockStartEnv(liveAt);
    timeline = clockOf(parseClockStart(clockStart));
    figures.clockStart = clockStart;
    log(`live clock: ${clockStart}`);
    Object.assign(env, { RISKMON_CLOCK_START: clockStart });
    for (const c of ['cdc', 'aggregate', 'api'] as const) { await fleet.stop(c); fleet.start(c, env); }
    await until('cdc streaming on the live clock', 120_000, async () => (await src.query(`SELECT 1 FROM pg_replication_slots s JOIN pg_stat_replication r ON r.pid = s.active_pid
      WHERE s.slot_name = $1 AND r.state = 'streaming'`, [name])).rowCount === 1);
    fleet.start('alerting', env);
    traffic = new Traffic(pgUrl, { tps: opts.tps, burstTps: opts.burstTps, merchants, scenarios, now: clock });
    await traffic.start();
    const liveStart = Date.now();
    figures.liveStart = new Date(liveStart).toISOString();
    log(`live at ${opts.tps} TPS (bursts to ${opts.burstTps}) for ${opts.minutes} min`);
    const liveMs = opts.minutes * MINUTE;
    const plan: Fault[] = [
      { kind: 'kill', target: 'cdc' }, { kind: 'kill', target: 'aggregate' }, { kind: 'kill', target: 'alerting' }, { kind: 'kill', target: 'api' },
      ...(rep ? [{ kind: 'kafka-leader' }, { kind: 'redis-master' }] as const : [{ kind: 'restart', target: 'kafka' }, { kind: 'restart', target: 'redis' }] as const),
      { kind: 'restart', target: 'pg' },
    ];
    // Long runs go through the list several times; each round in a new random order.
    const rounds = Math.max(1, Math.floor(opts.minutes / 10));
    const schedule: Fault[] = [];
    for (let r = 0; r < rounds; r++) schedule.push(...[...plan].sort(() => Math.random() - 0.5));
    const slotMs = (liveMs * 0.85) / schedule.length;
    let bursts = 0;
    const burstTimer = setInterval(() => { bursts++; void traffic!.burst(15).catch((e) => log(`burst failed: ${e.message}`)); }, Math.max(30_000, liveMs / 8));
    try {
      for (let i = 0; i < schedule.length; i++) {
        // A random moment inside this fault's slot.
        const at = liveStart + liveMs * 0.05 + slotMs * (i + Math.random() * 0.8);
        if (at > Date.now()) await sleep(at - Date.now());
        const f = schedule[i];
        const ts = Date.now();
        let what: string;
        if (f.kind === 'kill') {
          await fleet.kill(f.target);
          what = `SIGKILL ${f.target}`;
        } else if (f.kind === 'kafka-leader') {
          what = await killLeader(repDir, stack.KAFKA_BROKERS, name);
        } else if (f.kind === 'redis-master') {
          what = await failRedisMaster(repDir, redisMode, name, PARTITIONS);
        } else {
          await restartService(opts.dir, f.target, { hard: f.target === 'redis' });
          if (f.target === 'pg') await traffic.renew();
          what = `restart ${f.target}${f.target === 'redis' ? ' (SIGKILL, AOF)' : ''}`;
        }
        faults.push({ at: new Date(ts).toISOString(), what, tookMs: Date.now() - ts });
        log(`fault: ${what} (${Date.now() - ts} ms)`);
      }
      const end = liveStart + liveMs;
      if (end > Date.now()) await sleep(end - Date.now());
    } finally {
      clearInterval(burstTimer);
    }
    const sent = await traffic.stop();
    traffic = null;
    const loadStopped = Date.now();
    figures.live = { ...sent, bursts, seconds: (loadStopped - liveStart) / 1000, achievedTps: Math.round((sent.payments + sent.cancels) / ((loadStopped - liveStart) / 1000)) };
    figures.midnightCrossedDuringLive = midnight > clock() - (loadStopped - liveStart) && midnight < clock();
    log(`load stopped: ${JSON.stringify(figures.live)}`);

    // 3. Checks.
    const check = (name: string, ok: boolean, detail: string) => { checks.push({ name, ok, detail }); log(`${ok ? 'ok  ' : 'FAIL'} ${name}: ${detail}`); };
    const walAfterLoad = (await src.query(`SELECT pg_current_wal_lsn()::text AS l`)).rows[0].l as string;
    const tAck = Date.now();
    const acked = await until('slot confirmed past the end of the load', 180_000, async () =>
      (await src.query(`SELECT confirmed_flush_lsn >= $2::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = $1`, [name, walAfterLoad])).rows[0]?.ok === true)
      .then(() => true, () => false);
    check('slot confirmed_flush_lsn reaches pg_current_wal_lsn taken after the load', acked, `${walAfterLoad}${acked ? ` confirmed in ${((Date.now() - tAck) / 1000).toFixed(1)} s` : ' never confirmed'}`);
    let minLag = Number.POSITIVE_INFINITY;
    const lagOk = await until('slot lag ~0', 120_000, async () => {
      const l = Number((await src.query(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::float8 AS l FROM pg_replication_slots WHERE slot_name = $1`, [name])).rows[0].l);
      minLag = Math.min(minLag, l);
      return l <= 1024;
    }, 500).then(() => true, () => false);
    check('slot lag returns to ~0', lagOk, `smallest lag seen ${minLag} bytes`);

    const truthOf = (step: '1m' | '1h' | '1d') => sqlTruth(pgUrl, step, tz);
    const to = clock() + DAY;
    let dayDiff: string[] = [];
    await until('day buckets equal the SQL truth', 300_000, async () => {
      dayDiff = await diffAgainstReader(reader, await truthOf('1d'), '1d', now - 10 * DAY, to);
      return dayDiff.length === 0;
    }, 3000).catch(() => {});
    check('1d buckets of every merchant equal the SQL truth', dayDiff.length === 0, dayDiff.length ? `${dayDiff.length} differ, e.g. ${dayDiff.slice(0, 5).join('; ')}` : 'equal');
    const hourDiff = await diffAgainstReader(reader, await truthOf('1h'), '1h', now - 10 * DAY, to);
    check('1h buckets of every merchant equal the SQL truth', hourDiff.length === 0, hourDiff.length ? `${hourDiff.length} differ, e.g. ${hourDiff.slice(0, 5).join('; ')}` : 'equal');
    const minDiff = await diffAgainstReader(reader, await truthOf('1m'), '1m', minuteStart(clock() - 36 * HOUR), to);
    check('1m buckets of every merchant (last 36 h) equal the SQL truth', minDiff.length === 0, minDiff.length ? `${minDiff.length} differ, e.g. ${minDiff.slice(0, 5).join('; ')}` : 'equal');
    const counted = await src.query(`SELECT (SELECT count(*) FROM payments)::int AS p, (SELECT count(*) FROM payment_cancels)::int AS c`);
    figures.sourceRows = { payments: counted.rows[0].p, cancels: counted.rows[0].c };
    const tAudit = Date.now();
    const audit = await auditTopic(createKafka(kafkaConfigOf(stack.KAFKA_BROKERS), { clientId: 'riskmon-soak' }), name);
    figures.topic = { changes: audit.changes, inserts: audit.inserts, auditS: (Date.now() - tAudit) / 1000 };
    const lost = [['public.payments', counted.rows[0].p], ['public.payment_cancels', counted.rows[0].c]].filter(([t, n]) => (audit.inserts[t] ?? 0) !== n);
    check('every change on the topic exactly once, in commit order per partition',
      audit.duplicates === 0 && audit.outOfOrder === 0 && lost.length === 0,
      `${audit.changes} changes; twice ${audit.duplicates}, out of order ${audit.outOfOrder}; inserts ${JSON.stringify(audit.inserts)} vs SQL ${counted.rows[0].p} payments, ${counted.rows[0].c} cancels${audit.examples.length ? `; e.g. ${audit.examples.join('; ')}` : ''}`);

    type Status = { consumer: { lag: number | null; error?: string }; slot: { lagBytes: number | null } };
    let st: Status | null = null;
    const consumerOk = await until('consumer lag 0', 120_000, async () => { st = await get<Status>('/api/status'); return st.consumer.lag === 0; })
      .then(() => true, () => false);
    check('consumer group lag is 0 (GET /api/status)', consumerOk, JSON.stringify((st as Status | null)?.consumer ?? null));
    const dl = await get<{ count: number | null; latest: unknown[]; error?: string }>('/api/deadletters');
    check('no dead letters (GET /api/deadletters)', dl.count === 0, JSON.stringify(dl));

    // Alerts: the live phase (alerting running throughout) is the window in which a false alert would show.
    await until('both alerts listed', 120_000, async () => {
      const items = (await get<{ items: { rule: string; merchantId: string }[] }>('/api/alerts?limit=100')).items;
      return expected.every((e) => items.some((a) => `${a.rule}:${a.merchantId}` === e));
    }).catch(() => {});
    const items = (await get<{ items: { rule: string; merchantId: string; state: string }[] }>('/api/alerts?limit=100')).items;
    const got = items.map((a) => `${a.rule}:${a.merchantId}`).sort();
    figures.alerts = items.map((a) => `${a.rule}:${a.merchantId}:${a.state}`);
    check('each injected anomaly raised exactly one alert and nothing else alerted', JSON.stringify(got) === JSON.stringify(expected),
      `expected ${expected.join(', ')}; got ${got.join(', ') || 'none'}`);
    await until('Slack messages', 60_000, async () => slack.length >= expected.length).catch(() => {});
    // a duplicate would come from a notification still pending: none is left once the outbox has settled
    const risk = new pg.Client({ connectionString: riskUrl });
    await risk.connect();
    try { await until('the Slack outbox to settle', 60_000, async () => (await pendingNotifications(risk)) === 0); } catch { /* the check below says what arrived */ } finally { await risk.end(); }
    const mentions = [who.hot, who.bigVolumeStop].map((id) => slack.filter((m) => m.text.includes(`merchants/${id}`)).length);
    check('Slack received each alert exactly once', mentions.every((n) => n === 1) && slack.length === expected.length,
      `messages ${slack.length}; per alert ${mentions.join(', ')}`);

    // Every outage above is one a component must ride out in place; only the SIGKILLs may end a process.
    const exits = Object.fromEntries(fleet.unexpectedExits);
    figures.unexpectedExits = exits;
    check('no component exited by itself (each rode out the outages in place)', fleet.unexpectedExits.size === 0,
      fleet.unexpectedExits.size ? Object.entries(exits).map(([c, codes]) => `${c}: ${codes.join(', ')}`).join('; ') : 'none');
    await src.end();
    figures.totalS = (Date.now() - t0) / 1000;
    return { ok: checks.every((c) => c.ok), checks, faults, figures, logDir };
  } finally {
    await traffic?.stop().catch(() => {});
    await fleet.stopAll();
    await slackHook.stop();
    redis?.disconnect();
    if (!opts.keepStack) {
      await stackDown(opts.dir, { log: () => {} }).catch((e) => log(`stack down: ${e.message}`));
      await replicatedDown(repDir, { log: () => {} }).catch((e) => log(`replicated down: ${e.message}`));
    }
  }
}

/**
 * Benchmark of the reference workload generator, in a database of its own on the source server (dropped after):
 * - backfill_rows_per_s        one day at the reference scale (3M payments + cancels, 100k merchants) by COPY
 * - source_max_tps             commits/s the live generator achieves when asking for 20,000 TPS for 20 s (64
 *                              connections, one autocommit INSERT per transaction): what the source sustains here
 * - live_achieved_tps_at_5000  commits/s achieved when asking for the 5,000 TPS peak for 20 s (32 connections)
 */
import pg from 'pg';
import { migrate } from '../lib/migrate.ts';
import { backfill, ensureMerchants, live } from '../scripts/generate/index.ts';
import { withDatabase } from '../scripts/stack/index.ts';

export async function benchGenerate(env: NodeJS.ProcessEnv): Promise<Record<string, number>> {
  const base = env.PG_URL;
  if (!base) throw new Error('PG_URL is not set');
  const name = `riskmon_bench_gen_${Date.now().toString(36)}`;
  const admin = async (sql: string) => {
    const c = new pg.Client({ connectionString: withDatabase(base, 'postgres') });
    await c.connect();
    try { await c.query(sql); } finally { await c.end(); }
  };
  await admin(`CREATE DATABASE ${name}`);
  const url = withDatabase(base, name);
  try {
    await migrate(url, 'source');
    await ensureMerchants(url, 100_000);
    const bf = await backfill(url, { days: 1, seed: 1, connections: 2 });
    console.error(`   backfill: ${bf.rows} rows in ${bf.seconds.toFixed(1)} s = ${Math.round(bf.rowsPerSecond)} rows/s`);

    const runLive = async (tps: number, connections: number) => {
      const st = await (await live(url, { tps, durationS: 20, connections, seed: 2 })).done;
      console.error(`   live: asked ${tps} TPS on ${connections} connections, achieved ${Math.round(st.achievedTps)} (${st.errors} errors)`);
      return st.achievedTps;
    };
    const max = await runLive(20_000, 64);
    const at5000 = await runLive(5_000, 32);
    return {
      backfill_rows_per_s: Math.round(bf.rowsPerSecond),
      source_max_tps: Math.round(max),
      live_achieved_tps_at_5000: Math.round(at5000),
    };
  } finally {
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
  }
}

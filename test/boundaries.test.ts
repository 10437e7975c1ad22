/**
 * The dependency rule, checked on every non-test source file: a component (cdc, aggregator, alerting, api) reaches
 * another only through `lib/` or that component's declared public face; `lib/` imports no component; the tools at
 * the top (scripts, test, bench) use components through their public faces too, and may use a component's test
 * support (`testing.ts`, `testing/`); the dashboard (web/) imports only lib/. Test files (`*.test.ts`, `*.int.ts`)
 * and test support may reach inside. A dynamic import must name its module literally, so the type checker sees
 * the dependency.
 *
 * "Now" has one owner as well: the components read it from lib/clock.ts, never from `Date.now` or `new Date()`.
 *
 * The risk store has one owner too: SQL that names a table of sql/risk/*.sql appears only in alerting/risk-store/
 * (and in tests and test support). Everything else calls alerting/risk-store/index.ts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const COMPONENTS = ['cdc', 'aggregator', 'alerting', 'api'] as const;
const TOOLS = ['scripts', 'test', 'bench'] as const;
/** The declared public faces: the only files of a component that other folders may import. */
export const PUBLIC_FACES: readonly string[] = [
  'cdc/index.ts',
  'aggregator/index.ts',
  'aggregator/store/index.ts',
  'alerting/index.ts',
  'alerting/risk-store/index.ts',
  'api/index.ts',
];

export function isTestFile(file: string): boolean {
  return /\.(test|int)\.ts$/.test(file) || /(^|\/)testing(\.ts$|\/)/.test(file);
}

const folderOf = (file: string) => file.split('/')[0];

/** Why `from` may not import `to` (both relative to the repository root), or null when it may. */
export function violation(from: string, to: string): string | null {
  const a = folderOf(from);
  const b = folderOf(to);
  if (a === b) return null;
  if (from === 'scripts/riskmon.mjs' && b === 'dist') return null; // the bin runs the compiled build of all of it
  if (b === 'lib') return null; // pure helpers (lib/time.ts) serve the dashboard too
  if (a === 'web') return 'the dashboard (web/) imports nothing outside web/ but lib/';
  if (a === 'lib') return 'lib/ is the bottom layer: it imports no component or tool';
  const isComponent = (f: string) => (COMPONENTS as readonly string[]).includes(f);
  const isTool = (f: string) => (TOOLS as readonly string[]).includes(f);
  if (isComponent(b) && isTool(a) && isTestFile(to)) return null; // test support: for tests and benchmarks
  if (isComponent(b)) return PUBLIC_FACES.includes(to) ? null : `${to} is not a public face (${PUBLIC_FACES.filter((p) => folderOf(p) === b).join(', ')})`;
  if (isComponent(a) && isTool(b)) return 'a component does not import the tools (scripts/, test/, bench/)';
  if (isTool(a) && isTool(b)) return null;
  return `${b}/ is not a folder riskmon code imports from`;
}

/** Relative module specifiers of a source file: static imports and re-exports, and dynamic imports. */
export function importsOf(source: string): { spec: string | null; line: number }[] {
  const out: { spec: string | null; line: number; at: number }[] = [];
  const lineOf = (at: number) => source.slice(0, at).split('\n').length;
  // `import … from '…'` / `export … from '…'` (over several lines too), and bare `import '…'`
  for (const m of source.matchAll(/^[ \t]*(?:import|export)\b[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]|^[ \t]*import\s*['"]([^'"]+)['"]/gm)) {
    out.push({ spec: m[1] ?? m[2], line: lineOf(m.index!), at: m.index! });
  }
  for (const m of source.matchAll(/\bimport\(\s*([^)]*)\)/g)) {
    const lit = /^['"]([^'"]+)['"]$/.exec(m[1].trim());
    out.push({ spec: lit ? lit[1] : null, line: lineOf(m.index!), at: m.index! });
  }
  return out.sort((x, y) => x.at - y.at).map(({ spec, line }) => ({ spec, line }));
}

/** The risk store's directory: the only non-test code that runs SQL on the risk tables. */
export const RISK_STORE = 'alerting/risk-store/';

/** The tables the risk store's migrations create (sql/risk/*.sql). */
export function riskTables(sqlDir = path.join(ROOT, 'sql', 'risk')): string[] {
  const out = new Set<string>();
  for (const f of readdirSync(sqlDir).filter((n) => n.endsWith('.sql')).sort()) {
    for (const m of readFileSync(path.join(sqlDir, f), 'utf8').matchAll(/\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:risk\.|public\.)?"?([a-z_][a-z0-9_]*)"?/gi)) {
      out.add(m[1].toLowerCase());
    }
  }
  return [...out];
}

/**
 * The risk tables a source file's SQL names: a table right after FROM, JOIN, INTO, UPDATE, TABLE or TRUNCATE.
 * The keywords are matched in capitals, as the repository writes SQL, so prose ("alerts from the evaluator") is not SQL.
 */
export function riskTablesIn(source: string, tables: readonly string[]): string[] {
  const names = new Set(tables);
  const out = new Set<string>();
  for (const m of source.matchAll(/\b(?:FROM|JOIN|INTO|UPDATE|TABLE|TRUNCATE)\s+(?:ONLY\s+)?(?:public\.)?"?([a-z_][a-z0-9_]*)\b/g)) {
    if (names.has(m[1])) out.add(m[1]);
  }
  return [...out].sort();
}

/** Why `file` may not contain this SQL, or null when it may. */
export function riskSqlViolation(file: string, source: string, tables: readonly string[]): string | null {
  if (file.startsWith(RISK_STORE) || isTestFile(file)) return null;
  const named = riskTablesIn(source, tables);
  return named.length ? `runs SQL on risk tables (${named.join(', ')}): only ${RISK_STORE} does; call alerting/risk-store/index.ts` : null;
}

/**
 * Reads of the system clock as "now" in a source file, as line numbers: `Date.now` (called or passed) and `new Date()`
 * without arguments, outside comments. The components take "now" from their clock (lib/clock.ts: `systemClock`
 * where the real wall clock is meant, the injected `now` for the time of day) and measure durations with
 * performance.now().
 */
export function wallClockReads(source: string): number[] {
  const out: number[] = [];
  for (const [i, line] of source.split('\n').entries()) {
    const code = line.replace(/^\s*(\*|\/\*|\/\/).*$/, '').replace(/\/\/.*$/, '');
    if (/\bDate\.now\b|\bnew Date\(\s*\)/.test(code)) out.push(i + 1);
  }
  return out;
}

/** Why `file` may not read the system clock this way, or null when it may. */
export function clockViolation(file: string, source: string): string | null {
  if (!(COMPONENTS as readonly string[]).includes(folderOf(file)) || isTestFile(file)) return null;
  const lines = wallClockReads(source);
  return lines.length ? `reads the system clock at line ${lines.join(', ')}: take "now" from lib/clock.ts (the component's injected clock; systemClock for the real wall clock), durations from performance.now()` : null;
}

function sourceFiles(dir = ROOT, rel = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name.startsWith('.') || e.name === 'node_modules' || e.name === 'dist' || e.name === 'test-artifacts') continue;
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...sourceFiles(path.join(dir, e.name), r));
    else if (/\.(ts|mjs)$/.test(e.name) && rel) out.push(r); // top-level config files (vitest.config.ts) are not code
  }
  return out;
}

describe('dependency boundaries', () => {
  it('the rule itself: public faces and lib/ pass, private files and upward imports fail', () => {
    expect(violation('alerting/window.ts', 'aggregator/store/index.ts')).toBeNull();
    expect(violation('api/deps.ts', 'lib/kafka/index.ts')).toBeNull();
    expect(violation('bench/pipeline.ts', 'test/harness/index.ts')).toBeNull();
    expect(violation('alerting/window.ts', 'aggregator/store/read.ts')).toMatch(/not a public face/);
    expect(violation('api/routes/deadletters.ts', 'cdc/tails.ts')).toMatch(/not a public face/);
    expect(violation('bench/alerting.ts', 'alerting/evaluator.ts')).toMatch(/not a public face/);
    expect(violation('lib/cli.ts', 'cdc/index.ts')).toMatch(/bottom layer/);
    expect(violation('api/status.ts', 'scripts/stack/index.ts')).toMatch(/tools/);
    expect(violation('web/src/api.ts', 'api/schemas.ts')).toMatch(/web/);
    expect(violation('bench/alerting.ts', 'alerting/testing/fixtures.ts')).toBeNull();
    expect(violation('api/status.ts', 'alerting/testing/fixtures.ts')).toMatch(/not a public face/);
    expect(importsOf("import { a } from '../x.ts';\nexport { b } from './y.ts';\nconst m = await import(new URL('../z.ts', import.meta.url).href);\nawait import('./w.ts');\nimport {\n  c,\n  d,\n} from '../v.ts';"))
      .toEqual([{ spec: '../x.ts', line: 1 }, { spec: './y.ts', line: 2 }, { spec: null, line: 3 }, { spec: './w.ts', line: 4 }, { spec: '../v.ts', line: 5 }]);
    expect(isTestFile('aggregator/harness.int.ts') && isTestFile('alerting/testing/fixtures.ts') && isTestFile('cdc/cdc.int.test.ts')).toBe(true);
    expect(isTestFile('aggregator/store/writer.ts')).toBe(false);
  });

  it('the risk store rule itself: its tables come from sql/risk; SQL naming them passes only in alerting/risk-store/ and tests', () => {
    const tables = riskTables();
    expect(tables).toEqual(expect.arrayContaining(['alerts', 'alert_transitions', 'notifications', 'silences', 'evaluations', 'audit_log', 'backtests', 'shadow_alerts']));
    expect(tables.length).toBeGreaterThanOrEqual(15);
    const sql = "await db.query(`SELECT a.id FROM alerts a JOIN alert_transitions t ON t.alert_id = a.id`);\nawait c.query('DELETE FROM silences WHERE id = $1');\nawait c.query('INSERT INTO audit_log (actor) VALUES ($1)');\nawait c.query(`UPDATE backtests SET progress = 1`);";
    expect(riskTablesIn(sql, tables)).toEqual(['alert_transitions', 'alerts', 'audit_log', 'backtests', 'silences']);
    expect(riskTablesIn('// the alerts from the evaluator go into notifications; update the silences', tables)).toEqual([]);
    expect(riskTablesIn("SELECT name FROM merchants; SELECT 1 FROM pg_replication_slots", tables)).toEqual([]);
    expect(riskSqlViolation('api/routes/alerts.ts', sql, tables)).toMatch(/alerts.*only alerting\/risk-store\//);
    expect(riskSqlViolation('bench/backtest.ts', "SELECT 1 FROM backtests", tables)).toMatch(/backtests/);
    expect(riskSqlViolation('alerting/risk-store/alerts.ts', sql, tables)).toBeNull();
    expect(riskSqlViolation('api/testing.ts', sql, tables)).toBeNull();
    expect(riskSqlViolation('api/routes/alerts.int.test.ts', sql, tables)).toBeNull();
    expect(riskSqlViolation('api/routes/merchants.ts', "SELECT name FROM merchants WHERE merchant_id = $1", tables)).toBeNull();
  });

  it('every non-test file imports only across allowed boundaries', () => {
    const files = sourceFiles().filter((f) => !isTestFile(f));
    expect(files.length).toBeGreaterThan(100);
    const problems: string[] = [];
    let crossings = 0;
    for (const file of files) {
      for (const { spec, line } of importsOf(readFileSync(path.join(ROOT, file), 'utf8'))) {
        if (spec === null) { problems.push(`${file}:${line}: dynamic import of a computed module (name it literally, so it is type-checked)`); continue; }
        if (!spec.startsWith('.')) continue; // packages
        const to = path.relative(ROOT, path.resolve(ROOT, path.dirname(file), spec)).split(path.sep).join('/');
        if (folderOf(to) !== folderOf(file)) crossings++;
        const why = violation(file, to);
        if (why) problems.push(`${file}:${line}: imports ${to}: ${why}`);
      }
    }
    expect(crossings).toBeGreaterThan(50); // the scan saw the real cross-folder imports
    expect(problems).toEqual([]);
  });

  it('no non-test file outside alerting/risk-store/ runs SQL on the risk tables', () => {
    const tables = riskTables();
    const files = sourceFiles().filter((f) => !isTestFile(f));
    const problems: string[] = [];
    let storeFiles = 0;
    for (const file of files) {
      const source = readFileSync(path.join(ROOT, file), 'utf8');
      if (file.startsWith(RISK_STORE) && riskTablesIn(source, tables).length) storeFiles++;
      const why = riskSqlViolation(file, source, tables);
      if (why) problems.push(`${file}: ${why}`);
    }
    expect(storeFiles).toBeGreaterThan(5); // the scan saw the store's own SQL
    expect(problems).toEqual([]);
  });
});

describe('one clock', () => {
  it('the rule itself: Date.now and new Date() fail in the components\' code, durations and explicit instants pass', () => {
    expect(wallClockReads('const t = Date.now();\nconst d = new Date();\nconst n = o.now ?? Date.now;\nconst x = new Date(t);\nconst p = performance.now();\n// Date.now() in a comment\n * new Date() in a doc comment'))
      .toEqual([1, 2, 3]);
    expect(clockViolation('aggregator/consumer.ts', 'const now = Date.now();')).toMatch(/line 1: take "now" from lib\/clock.ts/);
    expect(clockViolation('api/routes/status.ts', 'at: new Date().toISOString()')).toMatch(/system clock/);
    expect(clockViolation('aggregator/consumer.ts', 'const t0 = performance.now(); const at = new Date(now()).toISOString();')).toBeNull();
    expect(clockViolation('lib/clock.ts', 'export const systemClock = () => Date.now();')).toBeNull();
    expect(clockViolation('cdc/cdc.int.test.ts', 'const now = Date.now();')).toBeNull();
    expect(clockViolation('scripts/demo.ts', 'const now = Date.now();')).toBeNull();
  });

  it('no component reads the system clock except through lib/clock.ts', () => {
    const files = sourceFiles().filter((f) => (COMPONENTS as readonly string[]).includes(folderOf(f)) && !isTestFile(f));
    expect(files.length).toBeGreaterThan(100);
    const problems = files.map((f) => [f, clockViolation(f, readFileSync(path.join(ROOT, f), 'utf8'))]).filter(([, why]) => why).map(([f, why]) => `${f}: ${why}`);
    expect(problems).toEqual([]);
  });
});

describe('one owner for creating topics', () => {
  it("only lib/kafka/topics.ts calls kafkajs' createTopics (its waitForLeaders fails on a broker that has not heard of the topic yet)", () => {
    const offenders = sourceFiles().filter((f) => f !== 'lib/kafka/topics.ts' && f !== 'test/boundaries.test.ts')
      .filter((f) => /\badmin\.createTopics\(/.test(readFileSync(path.join(ROOT, f), 'utf8')));
    expect(sourceFiles().length).toBeGreaterThan(100);
    expect(offenders).toEqual([]);
  });
});

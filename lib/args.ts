/**
 * The one argument parser of the `riskmon` commands (replay, backfill, status, migrate, cdc, generate), pure so it
 * is unit-tested. `--flag value` and `--flag=value`; a `bool` flag takes no value. Every problem is a UsageError
 * that names the flag and the expected form; the commands print it with their usage and exit 2.
 */

/** Bad command-line input: the message names the flag and the expected form; the CLI exits 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export type FlagSpec =
  | { kind: 'bool'; help: string }
  | { kind: 'str'; help: string }
  | { kind: 'int'; min: number; max: number; help: string }
  | { kind: 'num'; min: number; max: number; help: string }
  | { kind: 'time'; help: string }
  | { kind: 'list'; help: string };

export type ParsedFlags = Record<string, number | string | string[] | boolean | undefined>;

const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$/;

export function parseFlags(cmd: string, args: string[], spec: Record<string, FlagSpec>): ParsedFlags {
  const out: ParsedFlags = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith('--')) throw new UsageError(`unexpected argument "${a}"; flags are ${Object.keys(spec).map((k) => `--${k}`).join(', ')}`);
    const eq = a.indexOf('=');
    const name = a.slice(2, eq < 0 ? undefined : eq);
    const s = spec[name];
    if (!s) throw new UsageError(`unknown flag --${name}; known flags: ${Object.keys(spec).map((k) => `--${k}`).join(', ')}`);
    if (s.kind === 'bool') {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      out[name] = true;
      continue;
    }
    let value: string;
    if (eq >= 0) value = a.slice(eq + 1);
    else {
      if (i + 1 >= args.length || args[i + 1].startsWith('--')) throw new UsageError(`--${name} needs a value (${s.help})`);
      value = args[++i];
    }
    if (s.kind === 'list') {
      const list = (out[name] as string[] | undefined) ?? [];
      list.push(value);
      out[name] = list;
      continue;
    }
    if (out[name] !== undefined) throw new UsageError(`--${name} given twice`);
    out[name] = parseValue(cmd, name, value, s);
  }
  return out;
}

function parseValue(cmd: string, name: string, value: string, s: FlagSpec): number | string {
  const bad = (why: string) => new UsageError(`--${name} "${value}" ${why}; expected ${s.help}`);
  switch (s.kind) {
    case 'int':
    case 'num': {
      const ok = s.kind === 'int' ? /^\d+$/.test(value) : /^\d+(\.\d+)?$/.test(value);
      if (!ok) throw bad(s.kind === 'int' ? 'is not a whole number' : 'is not a number');
      const n = Number(value);
      if (n < s.min || n > s.max) throw bad(`is outside ${s.min}..${s.max}`);
      return n;
    }
    case 'time': {
      if (!TIME.test(value) || Number.isNaN(Date.parse(value))) throw bad('is not an ISO-8601 time with a zone');
      return Date.parse(value);
    }
    default:
      return value;
  }
}

/** Whether `--help` or `-h` is among the arguments. */
export function wantsHelp(args: string[]): boolean {
  return args.includes('--help') || args.includes('-h');
}

export function required<T>(cmd: string, flags: ParsedFlags, name: string, help: string): T {
  const v = flags[name];
  if (v === undefined) throw new UsageError(`--${name} is required (${help})`);
  return v as T;
}

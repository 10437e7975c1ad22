/**
 * PostgreSQL LSNs ("16/B374D848"): two hex halves of a 64-bit WAL position.
 * https://www.postgresql.org/docs/15/datatype-pg-lsn.html
 */
export class LsnError extends Error {
  constructor(readonly input: string) {
    super(`"${input}" is not an LSN: expected two hexadecimal numbers separated by "/", e.g. 0/16B3748`);
    this.name = 'LsnError';
  }
}

const LSN_RE = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/** The value of s[from, to) as 1–8 hex digits, or -1 (numbers, not BigInts: parseLsn runs twice per transaction). */
function hex32(s: string, from: number, to: number): number {
  if (to - from < 1 || to - from > 8) return -1;
  let v = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 65 && c <= 70 ? c - 55 : c >= 97 && c <= 102 ? c - 87 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

export function parseLsn(s: string): bigint {
  const slash = s.indexOf('/');
  const hi = hex32(s, 0, slash), lo = slash > 0 ? hex32(s, slash + 1, s.length) : -1;
  if (hi >= 0 && lo >= 0) return (BigInt(hi) << 32n) | BigInt(lo);
  const m = LSN_RE.exec(s.trim()); // surrounding blanks, or an error
  if (!m) throw new LsnError(s);
  return (BigInt('0x' + m[1]) << 32n) | BigInt('0x' + m[2]);
}

export function formatLsn(n: bigint): string {
  return `${Number(n >> 32n).toString(16).toUpperCase()}/${Number(n & 0xffffffffn).toString(16).toUpperCase()}`;
}

export function isLsn(s: string): boolean { return LSN_RE.test(s.trim()); }

export function compareLsn(a: string, b: string): number {
  const x = parseLsn(a), y = parseLsn(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Total order of change positions: (commit lsn, seq inside the transaction). */
export function comparePosition(a: { lsn: string; seq: number }, b: { lsn: string; seq: number }): number {
  return compareLsn(a.lsn, b.lsn) || a.seq - b.seq;
}

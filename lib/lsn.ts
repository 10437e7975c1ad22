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

export function parseLsn(s: string): bigint {
  const m = LSN_RE.exec(s.trim());
  if (!m) throw new LsnError(s);
  return (BigInt('0x' + m[1]) << 32n) | BigInt('0x' + m[2]);
}

export function formatLsn(n: bigint): string {
  return `${(n >> 32n).toString(16).toUpperCase()}/${(n & 0xffffffffn).toString(16).toUpperCase()}`;
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

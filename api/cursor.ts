/**
 * Opaque keyset cursor of the alert list: the (fired_at, id) of the last item, base64url JSON. fired_at is kept as
 * PostgreSQL's own text (microseconds), so no row is skipped by rounding to milliseconds.
 */
import { badRequest } from './errors.ts';

export interface AlertKey { firedAt: string; id: string }

export function encodeCursor(k: AlertKey): string {
  return Buffer.from(JSON.stringify([k.firedAt, k.id])).toString('base64url');
}

export function decodeCursor(raw: string): AlertKey {
  try {
    const v = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && /^\d{4}-\d{2}-\d{2}[ T][\d:.]+(Z|[+-]\d{2}(:?\d{2})?)$/.test(v[0]) && /^\d{1,19}$/.test(String(v[1]))) {
      return { firedAt: v[0], id: String(v[1]) };
    }
  } catch { /* fall through */ }
  throw badRequest('cursor', 'cursor is not one this API returned; pass nextCursor from the previous page unchanged');
}

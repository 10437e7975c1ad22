/** The API key (kept in localStorage) and authenticated JSON requests. */
const KEY = 'riskmon.apiKey';

export class HttpError extends Error {
  constructor(readonly status: number, readonly body: { error?: string; field?: string; message?: string }) {
    super(body.message ?? `HTTP ${status}`);
  }
}

export const session = {
  get key(): string | null { return localStorage.getItem(KEY); },
  set(key: string) { localStorage.setItem(KEY, key); },
  clear() { localStorage.removeItem(KEY); },
  role: 'viewer' as Role,
  /** The actor recorded for this key (its name, or `key <id>`): "mine" in the feed. */
  name: '',
  tz: 'Asia/Seoul',
};

export type Role = 'viewer' | 'analyst' | 'admin';
/** Analysts and admins triage; viewers read. */
export const canTriage = () => session.role === 'analyst' || session.role === 'admin';

/** `/?key=<key>` signs in directly: keep the key, then drop it from the address bar and history. */
export function takeKeyFromUrl(): void {
  const u = new URL(location.href);
  const k = u.searchParams.get('key');
  if (!k) return;
  session.set(k);
  u.searchParams.delete('key');
  history.replaceState(null, '', u.pathname + (u.search || '') + u.hash);
}

export async function api<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const res = await fetch(path, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${session.key ?? ''}`, ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: init.body !== undefined ? JSON.stringify(init.body) : undefined,
  });
  if (res.status === 204) return undefined as T;
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    if (res.status === 401) window.dispatchEvent(new CustomEvent('riskmon:unauthorized'));
    throw new HttpError(res.status, body);
  }
  return body as T;
}

// The alert JSON and the channel's messages, declared once (lib/alert-message.ts): the API serves exactly these.
export type { Alert, AlertDetail, AlertMessage, AlertUpdateMessage, Disposition, Triage } from '../../lib/alert-message.ts';

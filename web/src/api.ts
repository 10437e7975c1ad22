/**
 * The session and authenticated JSON requests. The API key is exchanged once for an HttpOnly session cookie
 * (POST /api/session); the page never keeps the key (not in localStorage, not in the URL) and cannot read the cookie.
 */
/** Where earlier versions kept the key: removed on every start. */
const OLD_KEY = 'riskmon.apiKey';

export class HttpError extends Error {
  constructor(readonly status: number, readonly body: { error?: string; field?: string; message?: string }) {
    super(body.message ?? `HTTP ${status}`);
  }
}

export const session = {
  role: 'viewer' as Role,
  /** The actor recorded for this key (its name, or `key <id>`): "mine" in the feed. */
  name: '',
  tz: 'Asia/Seoul',
};

export type Role = 'viewer' | 'analyst' | 'admin';
/** Analysts and admins triage; viewers read. */
export const canTriage = () => session.role === 'analyst' || session.role === 'admin';

/** Exchanges a key for the session cookie; throws HttpError (401: not accepted, 429: too many tries). */
export async function signInWith(key: string): Promise<void> {
  const res = await fetch('/api/session', { method: 'POST', credentials: 'same-origin', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key }) });
  if (!res.ok) throw new HttpError(res.status, await res.json().catch(() => ({})));
}

/** Ends the session on the server (the cookie stops working everywhere) and deletes the cookie. */
export async function signOut(): Promise<void> {
  await fetch('/api/session', { method: 'DELETE', credentials: 'same-origin' }).catch(() => {});
}

/**
 * `/?key=<key>` signs in directly, once: the key leaves the address bar and history before anything else happens,
 * then is exchanged for the session cookie. Returns an error to show, or null.
 */
export async function takeKeyFromUrl(): Promise<string | null> {
  try { localStorage.removeItem(OLD_KEY); } catch { /* storage disabled */ }
  const u = new URL(location.href);
  const k = u.searchParams.get('key');
  if (k === null) return null;
  u.searchParams.delete('key');
  history.replaceState(null, '', u.pathname + (u.search || '') + u.hash);
  try { await signInWith(k); return null; } catch (err) { return signInError(err); }
}

export function signInError(err: unknown): string {
  if (err instanceof HttpError && err.status === 401) return 'That key was not accepted.';
  if (err instanceof HttpError && err.status === 429) return 'Too many failed sign-ins from this address; wait a minute and try again.';
  return `Could not sign in (${(err as Error).message}).`;
}

export async function api<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const res = await fetch(path, {
    method: init.method ?? 'GET',
    credentials: 'same-origin',
    headers: init.body !== undefined ? { 'content-type': 'application/json' } : {},
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

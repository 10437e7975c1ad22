/**
 * One POST of an outbox sender: a bounded time for the whole exchange (connect, send, the answer's body), and at
 * most `maxBodyBytes` of the answer kept (for the reason recorded on the row), so a misbehaving endpoint costs
 * neither time nor memory without bound.
 */
export interface HttpAnswer {
  /** the HTTP status; null when no response came (refused, reset, timed out) */
  status: number | null;
  retryAfter: string | null;
  /** the start of the answer's body, or the network error's message */
  body: string;
}

export async function postJson(url: string, body: string, headers: Record<string, string>, timeoutMs: number, maxBodyBytes = 2048): Promise<HttpAnswer> {
  try {
    const res = await fetch(url, {
      method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body, redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await readStart(res, maxBodyBytes).catch(() => '') };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const why = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : e.cause?.code ?? e.cause?.message ?? e.message;
    return { status: null, retryAfter: null, body: why };
  }
}

async function readStart(res: Response, max: number): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  try {
    while (n < max) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      n += value.length;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return Buffer.concat(chunks).subarray(0, max).toString('utf8');
}

/** Retry-After is seconds or an HTTP date; missing or unreadable: 1 s. */
export function parseRetryAfter(value: string | null, now: number): number {
  if (!value) return 1000;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Math.ceil(Number(value) * 1000);
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - now) : 1000;
}

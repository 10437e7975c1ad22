/**
 * A local HTTP server that plays a Slack incoming webhook: records every request, answers from a script (default
 * 200 "ok"). Tests script 429/5xx answers; the demo prints what it receives; the benchmarks time arrivals.
 */
import { createServer, type Server } from 'node:http';

export interface FakeResponse { status: number; headers?: Record<string, string>; body?: string }
/** `body` is the parsed JSON (null when the request was not JSON), `text` the raw body. */
export interface Received { at: number; body: any; text: string }

export class FakeSlack {
  readonly received: Received[] = [];
  readonly script: FakeResponse[] = [];
  onRequest: ((r: Received) => void) | null = null;
  #server: Server | null = null;
  url = '';

  constructor(opts: { onRequest?: (r: Received) => void } = {}) {
    this.onRequest = opts.onRequest ?? null;
  }

  async start(): Promise<this> {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: any = null;
        try { body = JSON.parse(text || 'null'); } catch { /* kept as text */ }
        const r = { at: Date.now(), body, text };
        this.received.push(r);
        this.onRequest?.(r);
        const answer = this.script.shift() ?? { status: 200, body: 'ok' };
        res.writeHead(answer.status, { 'content-type': 'text/plain', ...answer.headers }).end(answer.body ?? '');
      });
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    const addr = this.#server.address();
    if (!addr || typeof addr === 'string') throw new Error('no address');
    this.url = `http://127.0.0.1:${addr.port}/services/T000/B000/XXX`;
    return this;
  }

  /** Lets the process exit while the receiver still listens (the demo runs until Ctrl-C). */
  unref(): this {
    this.#server?.unref();
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }
}

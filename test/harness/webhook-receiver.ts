/**
 * A local HTTP server that plays a system receiving riskmon's signed webhooks (a settlement system, an alert
 * router) the way docs/contracts.md tells one to: it verifies `riskmon-signature` over the raw body against its
 * secrets (rejecting with 401 what does not verify), dedupes by `idempotency-key`, and answers from a script (default
 * 200). It can go down and come back on the same port (`down()`, `up()`) and hold a request without answering
 * (`hang`). Tests assert on what it saw; the demo prints it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { IDEMPOTENCY_HEADER, SIGNATURE_HEADER, verifySignature } from '../../lib/webhook.ts';

export interface WebhookRequest {
  at: number;
  /** the raw body as received */
  text: string;
  body: any;
  signature: string | undefined;
  idempotencyKey: string | undefined;
  /** whether the signature verified under one of the receiver's secrets; and which secret (index) did */
  verified: boolean;
  verifiedBy: number | null;
  /** a repeat of an idempotency key already accepted (the receiver answered 200 and did nothing) */
  duplicate: boolean;
  /** what it answered (null: held, no answer) */
  answered: number | null;
}

export type WebhookAnswer = { status: number; headers?: Record<string, string>; body?: string } | 'hang';

export class WebhookReceiver {
  readonly requests: WebhookRequest[] = [];
  /** accepted events by idempotency key, in order of first acceptance */
  readonly accepted = new Map<string, any>();
  /** answers to the next requests, in order; then 200 */
  readonly script: WebhookAnswer[] = [];
  secrets: string[];
  onEvent: ((event: any, r: WebhookRequest) => void) | null = null;
  #server: Server | null = null;
  #held: ServerResponse[] = [];
  #port = 0;
  url = '';

  constructor(o: { secrets: string[]; onEvent?: (event: any, r: WebhookRequest) => void }) {
    this.secrets = o.secrets;
    this.onEvent = o.onEvent ?? null;
  }

  async start(port = 0): Promise<this> {
    const server = createServer((req, res) => this.#handle(req, res));
    server.keepAliveTimeout = 1000;
    await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(port, '127.0.0.1', resolve); });
    this.#server = server;
    this.#port = (server.address() as AddressInfo).port;
    this.url = `http://127.0.0.1:${this.#port}/riskmon/events`;
    return this;
  }

  /** Stops listening (connections refused), dropping held requests without an answer. */
  async down(): Promise<void> {
    const s = this.#server;
    this.#server = null;
    for (const r of this.#held.splice(0)) r.socket?.destroy();
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  /** Listens again on the same port. */
  async up(): Promise<void> {
    if (!this.#server) await this.start(this.#port);
  }

  /** Lets the process exit while the receiver still listens (the demo runs until Ctrl-C). */
  unref(): this {
    this.#server?.unref();
    return this;
  }

  stop(): Promise<void> { return this.down(); }

  /** Requests held without an answer so far. */
  get held(): number { return this.#held.length; }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: any = null;
      try { body = JSON.parse(text); } catch { /* kept as text */ }
      const signature = req.headers[SIGNATURE_HEADER] as string | undefined;
      const idempotencyKey = req.headers[IDEMPOTENCY_HEADER] as string | undefined;
      const nowS = Math.floor(Date.now() / 1000);
      const verifiedBy = this.secrets.findIndex((s) => verifySignature(signature, text, [s], nowS).ok);
      const r: WebhookRequest = {
        at: Date.now(), text, body, signature, idempotencyKey, verified: verifiedBy >= 0, verifiedBy: verifiedBy >= 0 ? verifiedBy : null,
        duplicate: false, answered: null,
      };
      this.requests.push(r);
      const answer = this.script.shift() ?? { status: 200 };
      if (answer === 'hang') { this.#held.push(res); return; }
      let status = answer.status;
      if (status >= 200 && status < 300) {
        if (!r.verified) status = 401;
        else if (!idempotencyKey || idempotencyKey !== body?.id) status = 400;
        else if (this.accepted.has(idempotencyKey)) r.duplicate = true;
        else { this.accepted.set(idempotencyKey, body); this.onEvent?.(body, r); }
      }
      r.answered = status;
      res.writeHead(status, { 'content-type': 'text/plain', ...(answer.headers ?? {}) }).end(answer.body ?? (status === 401 ? 'bad signature' : ''));
    });
  }
}

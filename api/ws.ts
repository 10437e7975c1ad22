/**
 * Live updates over WebSocket. One Redis subscriber per process receives alert transitions and triage changes
 * (`alert_update`) on `<prefix>:alerts` and fans them out to every client; a poller reads the current and previous minute of the merchants that any
 * client subscribed to, once per `seriesPollMs`, and sends a merchant's points when they changed.
 *
 * Reconnect without loss: a client passing `?lastEventId=N` is attached to the live fan-out first (messages are
 * held back), then the transitions with id > N are read from alert_transitions and sent, then the held messages
 * not already sent. Every message carries `eventId` (alert_transitions.id) so the client can resume from it.
 */
import { duplicateRedis, type RedisClient } from '../lib/redis.ts';
import { alertsChannel, decodeChannelMessage, encodeAlertMessage, type AlertMessage, type AlertUpdateMessage } from '../lib/alert-message.ts';
import type { Logger } from '../lib/logger.ts';
import { minuteStart, MINUTE } from '../lib/time.ts';
import type { ApiDeps } from './deps.ts';
import { wsAlertUpdates, wsAlertsRelayed, wsClients, wsReplayed } from './metrics.ts';
import { pointBody } from './points.ts';
import { transitionsSince } from '../alerting/risk-store/index.ts';

/** What we use of a `ws` WebSocket (the package ships no types here). */
export interface WebSocket {
  readonly readyState: number;
  readonly OPEN: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  on(event: 'close', fn: () => void): void;
  on(event: 'message', fn: (data: unknown) => void): void;
}

const MAX_SUBSCRIPTIONS = 50;
const REPLAY_LIMIT = 5000;


interface Client {
  ws: WebSocket;
  merchants: Set<string>;
  /** Live messages held while the missed ones are replayed; null once live. */
  held: AlertMessage[] | null;
}

export class LiveHub {
  readonly #clients = new Set<Client>();
  readonly #lastSent = new Map<string, string>();
  #sub: RedisClient | null = null;
  #timer: NodeJS.Timeout | null = null;
  #polling = false;

  constructor(private readonly deps: ApiDeps, private readonly log: Logger) {}

  get channel(): string { return alertsChannel(this.deps.cfg.redisPrefix); }
  get size(): number { return this.#clients.size; }

  async start(): Promise<void> {
    // in cluster mode the subscriber sits on one node; Redis Cluster forwards every PUBLISH to all nodes
    const sub = duplicateRedis(this.deps.redis);
    sub.on('error', (err: Error) => this.log.warn({ err }, 'alert channel subscriber error'));
    sub.on('message', (_ch: string, text: string) => this.#onAlert(text));
    await sub.subscribe(this.channel);
    this.#sub = sub;
    this.#timer = setInterval(() => void this.#poll(), this.deps.cfg.seriesPollMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    for (const c of this.#clients) c.ws.close(1001, 'server shutting down');
    this.#clients.clear();
    await this.#sub?.quit().catch(() => {});
    this.#sub = null;
  }

  /** Attach a socket; replays transitions after `lastEventId` first when given. */
  async attach(ws: WebSocket, lastEventId: number | null): Promise<void> {
    const client: Client = { ws, merchants: new Set(), held: lastEventId === null ? null : [] };
    this.#clients.add(client);
    wsClients.set(this.#clients.size);
    ws.on('close', () => { this.#clients.delete(client); wsClients.set(this.#clients.size); });
    ws.on('message', (data) => this.#onClientMessage(client, String(data)));
    send(ws, { type: 'hello', channel: 'alerts', pollMs: this.deps.cfg.seriesPollMs });
    if (lastEventId === null) return;
    let upTo = lastEventId;
    try {
      const missed = await this.missedSince(lastEventId);
      for (const m of missed) { send(ws, m); upTo = m.eventId; }
      wsReplayed.inc(missed.length);
    } catch (err) {
      this.log.warn({ err }, 'replay of missed transitions failed');
      send(ws, { type: 'error', error: 'replay_failed', message: 'could not read missed alerts; reload the alert list' });
    }
    const held = client.held ?? [];
    client.held = null;
    for (const m of held) if (m.eventId > upTo) send(ws, m);
  }

  /** Transitions with id > after, oldest first, in the shape of the live channel. */
  async missedSince(after: number): Promise<AlertMessage[]> {
    return transitionsSince(this.deps.riskPg, after, REPLAY_LIMIT);
  }

  #onAlert(text: string): void {
    let msg: AlertMessage | AlertUpdateMessage;
    try {
      msg = decodeChannelMessage(text);
    } catch (err) {
      this.log.warn({ err, text: text.slice(0, 200) }, 'ignoring a malformed message on the alert channel');
      return;
    }
    if (msg.type === 'alert_update') {
      // Triage changes carry no eventId and are not replayed; a client replaying missed transitions gets them at once.
      wsAlertUpdates.inc();
      for (const c of this.#clients) if (c.ws.readyState === c.ws.OPEN) c.ws.send(text);
      return;
    }
    wsAlertsRelayed.inc();
    const payload = encodeAlertMessage(msg);
    for (const c of this.#clients) {
      if (c.held) c.held.push(msg);
      else if (c.ws.readyState === c.ws.OPEN) c.ws.send(payload);
    }
  }

  #onClientMessage(client: Client, text: string): void {
    let m: { type?: string; merchantIds?: unknown };
    try { m = JSON.parse(text); } catch { return send(client.ws, { type: 'error', error: 'bad_request', message: 'messages are JSON' }); }
    if (m.type === 'subscribe' || m.type === 'unsubscribe') {
      const ids = Array.isArray(m.merchantIds) ? m.merchantIds.map(String).filter((s) => /^[A-Za-z0-9_.:-]{1,64}$/.test(s)) : [];
      if (m.type === 'subscribe') {
        for (const id of ids) if (client.merchants.size < MAX_SUBSCRIPTIONS) client.merchants.add(id);
        void this.#pushSeries(ids.filter((id) => client.merchants.has(id)), [client]);
      } else {
        for (const id of ids) client.merchants.delete(id);
      }
      return send(client.ws, { type: 'subscribed', merchantIds: [...client.merchants] });
    }
    send(client.ws, { type: 'error', error: 'bad_request', field: 'type', message: 'type must be subscribe or unsubscribe' });
  }

  async #poll(): Promise<void> {
    if (this.#polling) return; // a slow Redis must not pile up reads
    this.#polling = true;
    try {
      const wanted = new Set<string>();
      for (const c of this.#clients) for (const id of c.merchants) wanted.add(id);
      for (const k of this.#lastSent.keys()) if (!wanted.has(k)) this.#lastSent.delete(k);
      await this.#pushSeries([...wanted], null);
    } catch (err) {
      this.log.warn({ err }, 'live series poll failed');
    } finally {
      this.#polling = false;
    }
  }

  /** Reads the current and previous minute of each merchant; to `only` always, else to subscribers on change. */
  async #pushSeries(ids: string[], only: Client[] | null): Promise<void> {
    const to = minuteStart(this.deps.now()) + MINUTE;
    await Promise.all(ids.map(async (id) => {
      const points = (await this.deps.reader.series(id, to - 2 * MINUTE, to, '1m')).map(pointBody);
      const payload = JSON.stringify({ type: 'series', merchantId: id, step: '1m', points });
      if (!only) {
        if (this.#lastSent.get(id) === payload) return;
        this.#lastSent.set(id, payload);
      }
      for (const c of only ?? this.#clients) if (c.merchants.has(id) && c.ws.readyState === c.ws.OPEN) c.ws.send(payload);
    }));
  }
}

function send(ws: WebSocket, msg: unknown): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
}

/**
 * Live updates over WebSocket. One Redis subscriber per process receives alert transitions and triage changes
 * (`alert_update`) on `<prefix>:alerts` and fans them out to every client; a poller reads the current and previous minute of the merchants that any
 * client subscribed to, once per `seriesPollMs`, and sends a merchant's points when they changed.
 *
 * Reconnect without loss: a client passing `?lastEventId=N` is attached to the live fan-out first (messages are
 * held back), then the transitions with id > N are read from alert_transitions and sent, then the held messages
 * not already sent. Every message carries `eventId` (alert_transitions.id) so the client can resume from it.
 *
 * Bounded per client and per process: connections per key and in total are capped (refused before the upgrade);
 * a client whose send queue passes RISKMON_WS_MAX_BUFFERED_BYTES, or that leaves a ping unanswered, is closed; its
 * messages are throttled (RISKMON_WS_MAX_MESSAGES per 10 s) and at most 50 merchants are subscribed; a replay sends
 * at most 1,000 missed transitions.
 */
import { duplicateRedis, whenReady, type RedisClient } from '../lib/redis.ts';
import { alertsChannel, decodeChannelMessage, encodeAlertMessage, type AlertMessage, type AlertUpdateMessage } from '../lib/alert-message.ts';
import type { Logger } from '../lib/logger.ts';
import { minuteStart, MINUTE } from '../lib/time.ts';
import type { ApiDeps } from './deps.ts';
import { wsAlertUpdates, wsAlertsRelayed, wsClients, wsClosedSlow, wsRefused, wsReplayed } from './metrics.ts';
import { pointBody } from './points.ts';
import { transitionsSince } from '../alerting/risk-store/index.ts';

/** What we use of a `ws` WebSocket (the package ships no types here). */
export interface WebSocket {
  readonly readyState: number;
  readonly OPEN: number;
  /** bytes queued by send() and not yet handed to the kernel */
  readonly bufferedAmount: number;
  send(data: string): void;
  ping(): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  on(event: 'close' | 'pong', fn: () => void): void;
  on(event: 'message', fn: (data: unknown) => void): void;
}

const MAX_SUBSCRIPTIONS = 50;
/** Transitions replayed to one reconnecting client at most; beyond, it is told to reload. */
const REPLAY_LIMIT = 1000;
/** The window of RISKMON_WS_MAX_MESSAGES. */
const MESSAGE_WINDOW_MS = 10_000;


/** Who a connection belongs to: the key it authenticated with, and the dashboard session when it came with one. */
export interface Owner { keyId: string; sessionId: string | null }

interface Client {
  ws: WebSocket;
  owner: Owner;
  merchants: Set<string>;
  /** Live messages held while the missed ones are replayed; null once live. */
  held: AlertMessage[] | null;
  /** false from a ping until its pong */
  alive: boolean;
  /** messages received in the current window, and its start */
  messages: number;
  windowStart: number;
}

export class LiveHub {
  readonly #clients = new Set<Client>();
  readonly #lastSent = new Map<string, string>();
  #sub: RedisClient | null = null;
  #timer: NodeJS.Timeout | null = null;
  #polling = false;
  #pinger: NodeJS.Timeout | null = null;
  readonly #perKey = new Map<string, number>();

  constructor(private readonly deps: ApiDeps, private readonly log: Logger) {}

  get channel(): string { return alertsChannel(this.deps.cfg.redisPrefix); }
  get size(): number { return this.#clients.size; }

  async start(): Promise<void> {
    // in cluster mode the subscriber sits on one node; Redis Cluster forwards every PUBLISH to all nodes
    const sub = duplicateRedis(this.deps.redis);
    sub.on('error', (err: Error) => this.log.warn({ err }, 'alert channel subscriber error'));
    sub.on('message', (_ch: string, text: string) => this.#onAlert(text));
    await whenReady(sub);
    await sub.subscribe(this.channel);
    this.#sub = sub;
    this.#timer = setInterval(() => void this.#poll(), this.deps.cfg.seriesPollMs);
    this.#timer.unref();
    // A client that stopped reading stops answering pings too: closed before its queue can grow far.
    this.#pinger = setInterval(() => {
      for (const c of this.#clients) {
        if (!c.alive) { wsClosedSlow.inc({ reason: 'ping' }); this.#drop(c); continue; }
        c.alive = false;
        try { c.ws.ping(); } catch { this.#drop(c); }
      }
    }, this.deps.cfg.wsPingMs);
    this.#pinger.unref();
  }

  /**
   * Whether one more connection of `keyId` may open: null when it may, else why not (per key: 429, in total: 503).
   * Asked before the upgrade; the counts are taken again when the socket attaches.
   */
  refusal(keyId: string): { code: 'rate_limited' | 'unavailable'; message: string } | null {
    const cfg = this.deps.cfg;
    if ((this.#perKey.get(keyId) ?? 0) >= cfg.wsMaxPerKey) {
      wsRefused.inc({ reason: 'per_key' });
      return { code: 'rate_limited', message: `this key has ${cfg.wsMaxPerKey} live connections already (RISKMON_WS_MAX_PER_KEY); close one first` };
    }
    if (this.#clients.size >= cfg.wsMaxConnections) {
      wsRefused.inc({ reason: 'total' });
      return { code: 'unavailable', message: `this API process serves ${cfg.wsMaxConnections} live connections already; retry later` };
    }
    return null;
  }

  /** Ends a connection now (no close handshake: a client that does not read would never finish one). */
  #drop(c: Client): void {
    c.ws.terminate();
    this.#forget(c);
  }

  #forget(c: Client): void {
    if (!this.#clients.delete(c)) return;
    const n = (this.#perKey.get(c.owner.keyId) ?? 1) - 1;
    if (n > 0) this.#perKey.set(c.owner.keyId, n); else this.#perKey.delete(c.owner.keyId);
    wsClients.set(this.#clients.size);
  }

  /** Sends unless the client's queue is over its bound, in which case the client is closed. */
  #send(c: Client, payload: string): void {
    if (c.ws.readyState !== c.ws.OPEN) return;
    if (c.ws.bufferedAmount > this.deps.cfg.wsMaxBufferedBytes) {
      wsClosedSlow.inc({ reason: 'buffer' });
      this.#drop(c);
      return;
    }
    c.ws.send(payload);
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    if (this.#pinger) clearInterval(this.#pinger);
    for (const c of this.#clients) c.ws.close(1001, 'server shutting down');
    this.#clients.clear();
    this.#perKey.clear();
    await this.#sub?.quit().catch(() => {});
    this.#sub = null;
  }

  /** Closes the connections of a session that was ended (sign-out). */
  closeSession(sessionId: string): void {
    for (const c of this.#clients) if (c.owner.sessionId === sessionId) c.ws.close(4401, 'signed out');
  }

  /** Attach a socket; replays transitions after `lastEventId` first when given. */
  async attach(ws: WebSocket, lastEventId: number | null, owner: Owner): Promise<void> {
    const client: Client = { ws, owner, merchants: new Set(), held: lastEventId === null ? null : [], alive: true, messages: 0, windowStart: performance.now() };
    const refused = this.refusal(owner.keyId); // concurrent upgrades may have passed the check before the upgrade
    if (refused) { ws.close(refused.code === 'rate_limited' ? 4429 : 1013, refused.message.slice(0, 120)); return; }
    this.#clients.add(client);
    this.#perKey.set(owner.keyId, (this.#perKey.get(owner.keyId) ?? 0) + 1);
    wsClients.set(this.#clients.size);
    ws.on('close', () => this.#forget(client));
    ws.on('pong', () => { client.alive = true; });
    ws.on('message', (data) => this.#onClientMessage(client, String(data)));
    this.#send(client, JSON.stringify({ type: 'hello', channel: 'alerts', pollMs: this.deps.cfg.seriesPollMs }));
    if (lastEventId === null) return;
    let upTo = lastEventId;
    try {
      const missed = await this.missedSince(lastEventId);
      for (const m of missed) { this.#send(client, JSON.stringify(m)); upTo = m.eventId; }
      wsReplayed.inc(missed.length);
      if (missed.length >= REPLAY_LIMIT) {
        this.#send(client, JSON.stringify({ type: 'error', error: 'replay_truncated', message: `more than ${REPLAY_LIMIT} alerts were missed; reload the alert list` }));
      }
    } catch (err) {
      this.log.warn({ err }, 'replay of missed transitions failed');
      this.#send(client, JSON.stringify({ type: 'error', error: 'replay_failed', message: 'could not read missed alerts; reload the alert list' }));
    }
    const held = client.held ?? [];
    client.held = null;
    for (const m of held) if (m.eventId > upTo) this.#send(client, JSON.stringify(m));
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
      for (const c of this.#clients) this.#send(c, text);
      return;
    }
    wsAlertsRelayed.inc();
    const payload = encodeAlertMessage(msg);
    for (const c of this.#clients) {
      if (c.held) { if (c.held.length < REPLAY_LIMIT) c.held.push(msg); }
      else this.#send(c, payload);
    }
  }

  #onClientMessage(client: Client, text: string): void {
    const reply = (msg: unknown) => this.#send(client, JSON.stringify(msg));
    // Throttled: each subscribe reads Redis for the merchants it adds; a client sending faster than a person clicks
    // is closed.
    const now = performance.now();
    if (now - client.windowStart >= MESSAGE_WINDOW_MS) { client.windowStart = now; client.messages = 0; }
    if (++client.messages > this.deps.cfg.wsMaxMessages) {
      wsRefused.inc({ reason: 'messages' });
      reply({ type: 'error', error: 'rate_limited', message: `more than ${this.deps.cfg.wsMaxMessages} messages in ${MESSAGE_WINDOW_MS / 1000} s` });
      client.ws.close(1008, 'too many messages');
      this.#forget(client);
      return;
    }
    let m: { type?: string; merchantIds?: unknown };
    try { m = JSON.parse(text); } catch { return reply({ type: 'error', error: 'bad_request', message: 'messages are JSON' }); }
    if (m.type === 'subscribe' || m.type === 'unsubscribe') {
      const ids = Array.isArray(m.merchantIds) ? m.merchantIds.slice(0, MAX_SUBSCRIPTIONS).map(String).filter((s) => /^[A-Za-z0-9_.:-]{1,64}$/.test(s)) : [];
      if (m.type === 'subscribe') {
        const added = ids.filter((id) => !client.merchants.has(id) && client.merchants.size < MAX_SUBSCRIPTIONS && client.merchants.add(id));
        // only the merchants this message added are read at once; the rest arrive with the next poll
        if (added.length) void this.#pushSeries(added, [client]).catch((err) => this.log.warn({ err }, 'series read for a subscription failed'));
      } else {
        for (const id of ids) client.merchants.delete(id);
      }
      return reply({ type: 'subscribed', merchantIds: [...client.merchants] });
    }
    reply({ type: 'error', error: 'bad_request', field: 'type', message: 'type must be subscribe or unsubscribe' });
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
      for (const c of only ?? this.#clients) if (c.merchants.has(id)) this.#send(c, payload);
    }));
  }
}

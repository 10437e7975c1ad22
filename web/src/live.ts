/**
 * The WebSocket: alert transitions and triage changes (alert_update) for everyone, series for subscribed merchants. Reconnects with backoff and
 * asks for what it missed (`lastEventId`); when it has seen no event yet it tells listeners to reload instead.
 */
import type { AlertMessage, AlertUpdateMessage } from './api.ts';
import type { ApiPoint } from './series.ts';

export interface SeriesMessage { type: 'series'; merchantId: string; step: '1m'; points: ApiPoint[] }
type Status = 'connecting' | 'live' | 'offline';

class Live {
  #ws: WebSocket | null = null;
  #lastEventId: number | null = null;
  #attempt = 0;
  #subs = new Set<string>();
  #closed = false;
  readonly onAlert = new Set<(m: AlertMessage) => void>();
  readonly onUpdate = new Set<(m: AlertUpdateMessage) => void>();
  readonly onSeries = new Set<(m: SeriesMessage) => void>();
  readonly onStatus = new Set<(s: Status, gapUnknown: boolean) => void>();

  connect(): void {
    this.#closed = false;
    // Authenticated by the session cookie the browser sends with the upgrade (never a key in the URL).
    const q = new URLSearchParams();
    const resume = this.#lastEventId !== null;
    if (resume) q.set('lastEventId', String(this.#lastEventId));
    const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws${q.size ? `?${q}` : ''}`);
    this.#ws = ws;
    this.#emitStatus('connecting', false);
    ws.onopen = () => {
      // Before any event was seen, a reconnect cannot ask for the gap: listeners reload their lists.
      this.#emitStatus('live', this.#attempt > 0 && !resume);
      this.#attempt = 0;
      if (this.#subs.size) ws.send(JSON.stringify({ type: 'subscribe', merchantIds: [...this.#subs] }));
    };
    ws.onmessage = (e) => {
      const m = JSON.parse(String(e.data));
      if (m.type === 'alert') {
        if (this.#lastEventId !== null && m.eventId <= this.#lastEventId) return;
        this.#lastEventId = m.eventId;
        for (const f of this.onAlert) f(m);
      } else if (m.type === 'alert_update') {
        for (const f of this.onUpdate) f(m);
      } else if (m.type === 'series') {
        for (const f of this.onSeries) f(m);
      }
    };
    ws.onclose = () => {
      if (this.#ws !== ws) return;
      this.#emitStatus('offline', false);
      if (this.#closed) return;
      const delay = Math.min(30_000, 500 * 2 ** this.#attempt++) * (0.5 + Math.random() / 2);
      setTimeout(() => this.connect(), delay);
    };
  }

  close(): void { this.#closed = true; this.#ws?.close(); }

  subscribe(id: string): void {
    this.#subs.add(id);
    if (this.#ws?.readyState === WebSocket.OPEN) this.#ws.send(JSON.stringify({ type: 'subscribe', merchantIds: [id] }));
  }

  unsubscribe(id: string): void {
    this.#subs.delete(id);
    if (this.#ws?.readyState === WebSocket.OPEN) this.#ws.send(JSON.stringify({ type: 'unsubscribe', merchantIds: [id] }));
  }

  #emitStatus(s: Status, gapUnknown: boolean) { for (const f of this.onStatus) f(s, gapUnknown); }
}

export const live = new Live();

/** The top bar: pipeline health (polled) and merchant search (debounced). */
import { api } from './api.ts';
import { $, ago, bytes, html, render, time } from './format.ts';

interface Status {
  slot: { lagBytes: number | null; active: boolean | null; error?: string };
  consumer: { lag: number | null; error?: string };
  watermark: { at: string | null; behindMs: number | null; error?: string };
  evaluator: { lastClosedMinute: string | null; behindMs: number | null; error?: string };
  alerts: { firing: number | null; pendingNotifications: number | null };
  webhooks?: { pending: number | null; failed: number | null; oldestPendingAt: string | null; error?: string };
}

/** ok / warn / bad from a value and two limits; unknown (null) is bad. */
const level = (v: number | null, warn: number, bad: number) => v === null ? 'bad' : v >= bad ? 'bad' : v >= warn ? 'warn' : 'ok';

interface DeadLetters { count: number | null; latest: { at: string | null; from: string; reason: string; where: string }[]; error?: string }

export let lastStatus: Status | null = null;

async function refreshHealth(): Promise<void> {
  const el = $('#health');
  try {
    const [s, dl] = await Promise.all([
      api<Status>('/api/status'),
      api<DeadLetters>('/api/deadletters?limit=5').catch((e: Error): DeadLetters => ({ count: null, latest: [], error: e.message })),
    ]);
    lastStatus = s;
    const pills = [
      ['CDC slot', s.slot.error ? 'no slot' : bytes(s.slot.lagBytes), s.slot.error ? 'bad' : level(s.slot.lagBytes, 16 << 20, 256 << 20), s.slot.error ?? 'WAL not yet confirmed by the cdc'],
      ['Kafka lag', s.consumer.lag === null ? 'n/a' : s.consumer.lag.toLocaleString('en-US'), level(s.consumer.lag, 10_000, 200_000), s.consumer.error ?? 'messages the aggregators have not consumed'],
      ['Watermark', s.watermark.at ? `${ago(s.watermark.behindMs)} behind` : 'none', level(s.watermark.behindMs, 30_000, 120_000), s.watermark.error ?? `event time reached ${s.watermark.at ?? '—'}`],
      ['Closed', s.evaluator.lastClosedMinute ? time(s.evaluator.lastClosedMinute) : 'none', level(s.evaluator.behindMs, 60_000, 180_000), s.evaluator.error ?? 'last minute the rules evaluated'],
      ['Firing', String(s.alerts.firing ?? '—'), (s.alerts.firing ?? 0) > 0 ? 'warn' : 'ok', `${s.alerts.pendingNotifications ?? '—'} Slack messages pending`],
      ...(s.webhooks ? [['Webhooks', `${s.webhooks.pending ?? '—'} pending · ${s.webhooks.failed ?? '—'} failed`,
        s.webhooks.failed === null || s.webhooks.failed > 0 ? 'bad' : s.webhooks.oldestPendingAt && Date.now() - Date.parse(s.webhooks.oldestPendingAt) > 300_000 ? 'warn' : 'ok',
        s.webhooks.error ?? 'payout holds and alert transitions on their way as signed webhooks; failed: dead-lettered (a 4xx, or retried for the whole schedule) — see a merchant\'s hold panel or GET /api/webhooks?status=failed']] : []),
      ['Dead letters', dl.count === null ? 'n/a' : dl.count.toLocaleString('en-US'), dl.count === null ? 'bad' : dl.count > 0 ? 'warn' : 'ok',
        dl.error ?? (dl.latest.length ? dl.latest.map((d) => `${d.at ? time(d.at) : ''} ${d.from}: ${d.reason} (${d.where})`).join('\n') : 'rows and events riskmon could not read')],
    ];
    render(el, html`${pills.map(([k, v, lv, title]) => html`<span class="pill ${lv}" title="${title}"><b>${k}</b> ${v}</span>`)}`);
  } catch {
    render(el, html`<span class="pill bad">status unavailable</span>`);
  }
}

export function startHealth(): void {
  void refreshHealth();
  setInterval(() => void refreshHealth(), 10_000);
}

interface Merchant { merchantId: string; name: string; category: string }

export function startSearch(): void {
  const input = $('#q') as HTMLInputElement;
  const box = $('#results');
  let timer = 0;
  let seq = 0;
  const hide = () => { box.hidden = true; };
  input.addEventListener('input', () => {
    clearTimeout(timer);
    const q = input.value.trim();
    if (!q) return hide();
    timer = window.setTimeout(async () => {
      const mine = ++seq;
      try {
        const r = await api<{ items: Merchant[] }>(`/api/merchants?q=${encodeURIComponent(q)}&limit=12`);
        if (mine !== seq) return;
        render(box, r.items.length
          ? html`${r.items.map((m) => html`<a href="#/merchants/${m.merchantId}"><span class="mid">${m.merchantId}</span> ${m.name} <span class="muted">${m.category}</span></a>`)}`
          : /^\S+$/.test(q) ? html`<a href="#/merchants/${q}">Open merchant <span class="mid">${q}</span></a>` : html`<div class="muted pad">No merchant matches.</div>`);
        box.hidden = false;
      } catch { hide(); }
    }, 180);
  });
  $('#search').addEventListener('submit', (e) => {
    e.preventDefault();
    const first = box.querySelector('a');
    if (first) { location.hash = first.getAttribute('href')!; input.value = ''; hide(); }
  });
  box.addEventListener('click', () => { input.value = ''; hide(); });
  document.addEventListener('click', (e) => { if (!$('#search').contains(e.target as Node)) hide(); });
}

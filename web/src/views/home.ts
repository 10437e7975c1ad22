/** The page an analyst keeps open: live alert feed, riskiest merchants now, silences. */
import { api, HttpError, session, type Alert, type AlertMessage } from '../api.ts';
import { $, dateTime, evidenceLine, html, krw, pct, render, RULE_LABEL, time, type Raw } from '../format.ts';
import { live } from '../live.ts';

interface TopItem { merchantId: string; name: string | null; status: string; ratio: number | null; evidence: Record<string, any> }
interface Silence { id: string; merchantId: string | null; rule: string | null; startsAt: string; endsAt: string; reason: string; createdBy: string; active: boolean }

const FEED_SIZE = 100;

export function alertRow(a: Alert, opts: { fresh?: boolean; transition?: string; showMerchant?: boolean } = {}): Raw {
  const t = opts.transition;
  return html`<tr class="${opts.fresh ? 'fresh' : ''}" data-alert="${a.id}">
    <td class="nowrap">${dateTime(a.firedAt)}</td>
    <td><span class="badge ${a.state}">${a.state}</span>${t && t !== 'fired' ? html` <span class="muted">${t}</span>` : ''}</td>
    <td>${RULE_LABEL[a.rule] ?? a.rule}</td>
    ${opts.showMerchant === false ? '' : html`<td><a class="mid" href="#/merchants/${a.merchantId}">${a.merchantId}</a></td>`}
    <td class="ev">${evidenceLine(a)}</td>
    <td class="nowrap muted">${a.resolvedAt ? `resolved ${time(a.resolvedAt)}` : ''}</td>
  </tr>`;
}

export function home(main: HTMLElement): () => void {
  render(main, html`
    <div class="grid">
      <section class="card feed">
        <h2>Live alerts <span class="live-dot" id="live-dot" title="WebSocket"></span><span class="muted small" id="feed-note"></span></h2>
        <table class="table"><thead><tr><th>Fired</th><th>State</th><th>Rule</th><th>Merchant</th><th>Evidence</th><th></th></tr></thead>
        <tbody id="feed"><tr><td colspan="6" class="muted">Loading…</td></tr></tbody></table>
      </section>
      <aside class="side">
        <section class="card"><h2>Cancel rate vs baseline <span class="muted small" id="top-c-min"></span></h2><div id="top-cancel" class="toplist"></div></section>
        <section class="card"><h2>Volume vs same time, 7 days <span class="muted small" id="top-v-min"></span></h2><div id="top-volume" class="toplist"></div></section>
        <section class="card"><h2>Silences</h2><div id="silences"></div></section>
      </aside>
    </div>`);

  const feed = $('#feed', main);
  let alerts: Alert[] = [];
  const fresh = new Map<string, string>();
  const draw = () => render(feed, alerts.length
    ? html`${alerts.map((a) => alertRow(a, { fresh: fresh.has(a.id), transition: fresh.get(a.id) }))}`
    : html`<tr><td colspan="6" class="muted">No alerts yet. New ones appear here as they fire.</td></tr>`);
  const load = async () => {
    alerts = (await api<{ items: Alert[] }>(`/api/alerts?limit=${FEED_SIZE}`)).items;
    draw();
  };
  void load().catch(() => render(feed, html`<tr><td colspan="6" class="error">Could not load alerts.</td></tr>`));

  const onAlert = (m: AlertMessage) => {
    alerts = [m.alert, ...alerts.filter((a) => a.id !== m.alert.id)].sort((x, y) => (x.firedAt < y.firedAt ? 1 : x.firedAt > y.firedAt ? -1 : Number(y.id) - Number(x.id))).slice(0, FEED_SIZE);
    fresh.set(m.alert.id, m.transition);
    draw();
    void loadTop();
  };
  const onStatus = (s: string, gapUnknown: boolean) => {
    const dot = main.querySelector('#live-dot');
    if (dot) { dot.className = `live-dot ${s}`; dot.setAttribute('title', `WebSocket ${s}`); }
    if (gapUnknown) void load();
  };
  live.onAlert.add(onAlert);
  live.onStatus.add(onStatus);

  const topList = async (by: 'cancel_rate' | 'volume_drop', el: string, minuteEl: string) => {
    const r = await api<{ minute: string | null; items: TopItem[] }>(`/api/top?by=${by}&limit=8`);
    $(minuteEl, main).textContent = r.minute ? `at ${time(r.minute)}` : '';
    render($(el, main), r.items.length ? html`<table class="table compact">${r.items.map((i) => html`<tr>
        <td><a href="#/merchants/${i.merchantId}"><span class="mid">${i.merchantId}</span> ${i.name ?? ''}</a></td>
        <td class="num"><span class="badge ${i.status}">${by === 'cancel_rate' ? `${i.ratio === null ? '—' : i.ratio.toFixed(1)}×` : pct(i.ratio, 0)}</span></td>
        <td class="num muted small">${by === 'cancel_rate' ? `${pct(i.evidence?.window?.rate)} vs ${pct(i.evidence?.baseline?.rate, 2)}` : `${krw(i.evidence?.window?.approvedAmount)} / ${krw(i.evidence?.baseline?.sameTimeAverage)}`}</td>
      </tr>`)}</table>` : html`<p class="muted small">No evaluations yet.</p>`);
  };
  const loadTop = () => Promise.all([topList('cancel_rate', '#top-cancel', '#top-c-min'), topList('volume_drop', '#top-volume', '#top-v-min')]).catch(() => {});
  void loadTop();
  const topTimer = setInterval(() => void loadTop(), 30_000);

  void silences($('#silences', main));
  return () => { live.onAlert.delete(onAlert); live.onStatus.delete(onStatus); clearInterval(topTimer); };
}

async function silences(el: HTMLElement): Promise<void> {
  const admin = session.role === 'admin';
  const draw = async (msg = '') => {
    const { items } = await api<{ items: Silence[] }>('/api/silences');
    render(el, html`
      ${items.length ? html`<table class="table compact">${items.map((s) => html`<tr>
        <td>${s.merchantId ? html`<a class="mid" href="#/merchants/${s.merchantId}">${s.merchantId}</a>` : 'all merchants'}</td>
        <td>${s.rule ? RULE_LABEL[s.rule] : 'all rules'}</td>
        <td class="small muted nowrap">${s.active ? 'until' : 'from'} ${dateTime(s.active ? s.endsAt : s.startsAt)}</td>
        <td class="small">${s.reason}</td>
        ${admin ? html`<td><button class="link" data-del="${s.id}" title="remove">✕</button></td>` : ''}
      </tr>`)}</table>` : html`<p class="muted small">No active silences.</p>`}
      ${admin ? html`<form id="silence-form" class="inline">
        <input name="merchantId" placeholder="merchant id" size="8">
        <select name="rule"><option value="">all rules</option><option value="cancel_rate_spike">cancel rate</option><option value="volume_drop">volume drop</option></select>
        <select name="minutes"><option value="60">1 h</option><option value="240">4 h</option><option value="1440">1 day</option><option value="10080">7 days</option></select>
        <input name="reason" placeholder="reason" size="12">
        <button type="submit">Silence</button>
      </form>` : ''}
      ${msg ? html`<p class="error small">${msg}</p>` : ''}`);
    el.querySelectorAll<HTMLButtonElement>('[data-del]').forEach((b) => b.addEventListener('click', async () => {
      await api(`/api/silences/${b.dataset.del}`, { method: 'DELETE' }).catch(() => {});
      void draw();
    }));
    el.querySelector('#silence-form')?.addEventListener('submit', async (e) => {
      e.preventDefault();
      const f = new FormData(e.target as HTMLFormElement);
      const body: Record<string, unknown> = { minutes: Number(f.get('minutes')), reason: String(f.get('reason') ?? '') };
      if (f.get('merchantId')) body.merchantId = String(f.get('merchantId')).trim();
      if (f.get('rule')) body.rule = f.get('rule');
      try { await api('/api/silences', { method: 'POST', body }); void draw(); } catch (err) { void draw(err instanceof HttpError ? err.message : 'failed'); }
    });
  };
  await draw().catch(() => render(el, html`<p class="error small">Could not load silences.</p>`));
}

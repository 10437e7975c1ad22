/**
 * The page an analyst keeps open: live alert feed (with who has each alert, how it was closed and the merchant's ₩ at
 * risk — its receivable now, at firing below), newest first or by ₩ at risk; merchants that owe the most; riskiest
 * merchants now; silences.
 */
import { api, HttpError, session, type Alert, type AlertMessage, type AlertUpdateMessage } from '../api.ts';
import { $, dateTime, DISPOSITION_LABEL, evidenceLine, html, krw, krwExact, pct, render, RULE_LABEL, time, type Raw } from '../format.ts';
import { live } from '../live.ts';

interface TopItem { merchantId: string; name: string | null; status: string; ratio: number | null; evidence: Record<string, any> }
interface TopExposure { merchantId: string; name: string | null; receivable: string; projectedReceivable: string; settledThrough: string | null; holds: { state: string }[] }
interface Silence { id: string; merchantId: string | null; rule: string | null; startsAt: string; endsAt: string; reason: string; createdBy: string; active: boolean }

const FEED_SIZE = 100;

/** Who has the alert: its assignee, else who acknowledged it, else "unacknowledged". */
export function ownerCell(a: Alert): Raw {
  if (a.assignee) return html`<span class="owner" title="assigned${a.ack ? `; acknowledged by ${a.ack.by}` : ''}">→ ${a.assignee}</span>`;
  if (a.ack) return html`<span class="owner muted" title="acknowledged ${dateTime(a.ack.at)}">ack ${a.ack.by}</span>`;
  return html`<span class="badge unacked">unacknowledged</span>`;
}

export function dispositionBadge(a: Alert): Raw {
  if (!a.disposition) return html`<span class="muted small">open</span>`;
  return html`<span class="badge disp-${a.disposition.value}" title="by ${a.disposition.by}${a.disposition.note ? `: ${a.disposition.note}` : ''}">${DISPOSITION_LABEL[a.disposition.value] ?? a.disposition.value}</span>`;
}

/**
 * ₩ at risk: the merchant's receivable now (what it owes back since its last payout), the receivable when the alert
 * fired on a second line; both exact on hover. A merchant that owes nothing shows ₩0 in grey.
 */
export function atRiskCell(a: Alert): Raw {
  const now = a.receivableNow ?? '0';
  const fired = a.exposureAtFiring?.receivable ?? null;
  const owes = now !== '0';
  const title = `receivable now ${krwExact(now)}${fired !== null ? `; at firing ${krwExact(fired)}` : '; at firing: not recorded'}`;
  return html`<td class="num atrisk" title="${title}" data-receivable="${now}"><span class="${owes ? 'owes' : 'muted'}">${krw(now)}</span>${fired !== null ? html`<div class="muted small">at firing ${krw(fired)}</div>` : ''}</td>`;
}

export function alertRow(a: Alert, opts: { fresh?: boolean; transition?: string; showMerchant?: boolean } = {}): Raw {
  const t = opts.transition;
  return html`<tr class="${opts.fresh ? 'fresh' : ''}" data-alert="${a.id}">
    <td class="nowrap"><a class="open" href="#/alerts/${a.id}" title="open the alert">${dateTime(a.firedAt)}</a></td>
    <td class="nowrap"><span class="badge ${a.state}">${a.state}</span>${t && t !== 'fired' && t !== 'update' ? html` <span class="muted">${t}</span>` : ''}${a.resolvedAt ? html` <span class="muted small">${time(a.resolvedAt)}</span>` : ''}</td>
    <td>${RULE_LABEL[a.rule] ?? a.rule}</td>
    ${opts.showMerchant === false ? '' : html`<td><a class="mid" href="#/merchants/${a.merchantId}">${a.merchantId}</a></td>`}
    <td class="ev">${evidenceLine(a)}</td>
    ${atRiskCell(a)}
    <td class="nowrap">${ownerCell(a)}</td>
    <td class="nowrap">${dispositionBadge(a)}</td>
  </tr>`;
}

type Filter = 'all' | 'mine' | 'unacked' | 'open';
const FILTERS: { id: Filter; label: string; title: string }[] = [
  { id: 'all', label: 'All', title: 'every alert' },
  { id: 'mine', label: 'Mine', title: 'assigned to you' },
  { id: 'unacked', label: 'Unacknowledged', title: 'nobody has acknowledged them yet' },
  { id: 'open', label: 'Open', title: 'no disposition yet' },
];
const FILTER_QUERY: Record<Filter, () => string> = {
  all: () => '', mine: () => `&assignee=${encodeURIComponent(session.name)}`, unacked: () => '&acked=false', open: () => '&disposition=none',
};
type Sort = 'fired' | 'receivable';
const SORTS: { id: Sort; label: string; title: string }[] = [
  { id: 'fired', label: 'Newest', title: 'newest first, live' },
  { id: 'receivable', label: '₩ at risk', title: "largest receivable now first (the merchant's money at risk; re-read every 30 s)" },
];
const matches = (f: Filter, a: Alert) => f === 'all' || (f === 'mine' ? a.assignee === session.name : f === 'unacked' ? !a.ack : !a.disposition);

export function home(main: HTMLElement): () => void {
  let filter: Filter = (sessionStorage.getItem('riskmon.feed') as Filter) || 'all';
  let sort: Sort = sessionStorage.getItem('riskmon.sort') === 'receivable' ? 'receivable' : 'fired';
  render(main, html`
    <div class="grid">
      <section class="card feed">
        <h2>Live alerts <span class="live-dot" id="live-dot" title="WebSocket"></span><span class="muted small" id="feed-note"></span>
          <span class="tabs filters" id="filters" role="group" aria-label="filter alerts">${FILTERS.map((f) => html`<button data-filter="${f.id}" title="${f.title}" aria-pressed="false">${f.label}</button>`)}</span>
          <span class="tabs sorts" id="sorts" role="group" aria-label="order alerts">${SORTS.map((o) => html`<button data-sort="${o.id}" title="${o.title}" aria-pressed="false">${o.label}</button>`)}</span></h2>
        <table class="table nav"><thead><tr><th>Fired</th><th>State</th><th>Rule</th><th>Merchant</th><th>Evidence</th><th class="num" title="the merchant's receivable now; at firing below">₩ at risk</th><th>Owner</th><th>Disposition</th></tr></thead>
        <tbody id="feed"><tr><td colspan="8" class="muted">Loading…</td></tr></tbody></table>
        <p class="muted small keys"><kbd>j</kbd>/<kbd>k</kbd> move · <kbd>Enter</kbd> opens the alert · <kbd>/</kbd> searches merchants</p>
      </section>
      <aside class="side">
        <section class="card"><h2>₩ at risk <span class="muted small" id="top-r-min"></span></h2><div id="top-receivable" class="toplist"></div></section>
        <section class="card"><h2>Cancel rate vs baseline <span class="muted small" id="top-c-min"></span></h2><div id="top-cancel" class="toplist"></div></section>
        <section class="card"><h2>Volume vs same time, 7 days <span class="muted small" id="top-v-min"></span></h2><div id="top-volume" class="toplist"></div></section>
        <section class="card"><h2>Silences</h2><div id="silences"></div></section>
      </aside>
    </div>`);

  const feed = $('#feed', main);
  let alerts: Alert[] = [];
  const fresh = new Map<string, string>();
  const empty: Record<Filter, string> = {
    all: 'No alerts yet. New ones appear here as they fire.', mine: 'Nothing is assigned to you.',
    unacked: 'Every alert is acknowledged.', open: 'Every alert has a disposition.',
  };
  const draw = () => render(feed, alerts.length
    ? html`${alerts.map((a) => alertRow(a, { fresh: fresh.has(a.id), transition: fresh.get(a.id) }))}`
    : html`<tr><td colspan="8" class="muted">${empty[filter]}</td></tr>`);
  const load = async () => {
    main.querySelectorAll<HTMLButtonElement>('#filters button').forEach((b) => {
      b.classList.toggle('on', b.dataset.filter === filter);
      b.setAttribute('aria-pressed', String(b.dataset.filter === filter));
    });
    main.querySelectorAll<HTMLButtonElement>('#sorts button').forEach((b) => {
      b.classList.toggle('on', b.dataset.sort === sort);
      b.setAttribute('aria-pressed', String(b.dataset.sort === sort));
    });
    alerts = (await api<{ items: Alert[] }>(`/api/alerts?limit=${FEED_SIZE}${FILTER_QUERY[filter]()}${sort === 'receivable' ? '&sort=receivable' : ''}`)).items;
    draw();
  };
  const loadOrSay = () => load().catch(() => render(feed, html`<tr><td colspan="8" class="error">Could not load alerts.</td></tr>`));
  void loadOrSay();
  $('#filters', main).addEventListener('click', (e) => {
    const b = (e.target as HTMLElement).closest('button');
    if (!b?.dataset.filter) return;
    filter = b.dataset.filter as Filter;
    sessionStorage.setItem('riskmon.feed', filter);
    fresh.clear();
    void loadOrSay();
  });
  $('#sorts', main).addEventListener('click', (e) => {
    const b = (e.target as HTMLElement).closest('button');
    if (!b?.dataset.sort || b.dataset.sort === sort) return;
    sort = b.dataset.sort as Sort;
    sessionStorage.setItem('riskmon.sort', sort);
    fresh.clear();
    void loadOrSay();
  });

  const byFired = (x: Alert, y: Alert) => (x.firedAt < y.firedAt ? 1 : x.firedAt > y.firedAt ? -1 : Number(y.id) - Number(x.id));
  const byReceivable = (x: Alert, y: Alert) => {
    const d = BigInt(y.receivableNow ?? '0') - BigInt(x.receivableNow ?? '0');
    return d > 0n ? 1 : d < 0n ? -1 : byFired(x, y);
  };
  /** Puts the alert's new state in the feed (or takes it out when it no longer matches the filter). */
  const upsert = (a: Alert, transition: string) => {
    const old = alerts.find((x) => x.id === a.id);
    // A transition's triage state is the row's when the evaluator wrote it; an alert_update is newer: keep the feed's.
    const merged: Alert = old && transition !== 'update' ? { ...a, ack: old.ack, assignee: old.assignee, disposition: old.disposition } : a;
    const rest = alerts.filter((x) => x.id !== a.id);
    alerts = (matches(filter, merged) ? [merged, ...rest] : rest).sort(sort === 'receivable' ? byReceivable : byFired).slice(0, FEED_SIZE);
    fresh.set(a.id, transition);
    draw();
  };
  const onAlert = (m: AlertMessage) => {
    upsert(m.alert, m.transition);
    void loadTop();
  };
  const onUpdate = (m: AlertUpdateMessage) => {
    if (!alerts.some((x) => x.id === m.alert.id) && !matches(filter, m.alert)) return;
    upsert(m.alert, 'update');
  };
  let wasOffline = false;
  const onStatus = (s: string, gapUnknown: boolean) => {
    const dot = main.querySelector('#live-dot');
    if (dot) { dot.className = `live-dot ${s}`; dot.setAttribute('title', `WebSocket ${s}`); }
    // Triage changes (alert_update) are not replayed after a reconnect: reload the list instead.
    if (gapUnknown || (s === 'live' && wasOffline)) void loadOrSay();
    if (s === 'offline') wasOffline = true; else if (s === 'live') wasOffline = false;
  };
  live.onAlert.add(onAlert);
  live.onUpdate.add(onUpdate);
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
  const topReceivable = async () => {
    const r = await api<{ computedAt: string | null; items: TopExposure[] }>('/api/exposure/top?limit=8');
    $('#top-r-min', main).textContent = r.computedAt ? `at ${time(r.computedAt)}` : '';
    render($('#top-receivable', main), r.items.length ? html`<table class="table compact">${r.items.map((i) => html`<tr data-merchant="${i.merchantId}">
        <td><a href="#/merchants/${i.merchantId}"><span class="mid">${i.merchantId}</span> ${i.name ?? ''}</a>${i.holds.some((h) => h.state === 'active') ? html` <span class="badge held" title="payouts held">held</span>` : ''}</td>
        <td class="num owes" title="receivable now ${krwExact(i.receivable)}">${krw(i.receivable)}</td>
        <td class="num muted small" title="projected at the next payout ${krwExact(i.projectedReceivable)}">→ ${krw(i.projectedReceivable)}</td>
      </tr>`)}</table>` : html`<p class="muted small">No merchant owes a receivable.</p>`);
  };
  const loadTop = () => Promise.all([topReceivable(), topList('cancel_rate', '#top-cancel', '#top-c-min'), topList('volume_drop', '#top-volume', '#top-v-min')]).catch(() => {});
  void loadTop();
  // The receivable moves every minute: in ₩-at-risk order the feed is re-read with the top lists.
  const topTimer = setInterval(() => { void loadTop(); if (sort === 'receivable') void loadOrSay(); }, 30_000);

  void silences($('#silences', main));
  return () => { live.onAlert.delete(onAlert); live.onUpdate.delete(onUpdate); live.onStatus.delete(onStatus); clearInterval(topTimer); };
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

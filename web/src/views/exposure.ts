/**
 * Money at risk on the merchant and alert pages: the merchant's exposure (settled through, approved and canceled
 * since, net, receivable, projected at the next payout, next payout time; GET /api/merchants/:id/exposure) and, on the
 * merchant page, its net position since the last payout over the last 7 days against its payouts
 * (GET /api/merchants/:id/payouts, the hourly series; series.ts `netPosition`). The alert page shows the exposure at
 * firing beside the exposure now.
 */
import { api, type Alert } from '../api.ts';
import { Chart, secs } from '../charts.ts';
import { $, dateTime, html, krw, krwExact, render, type Raw } from '../format.ts';
import { DAY, fill, HOUR, netPosition, parsePoints, settledAt, type ApiPoint, type PayoutMark } from '../series.ts';

export type Exposure = NonNullable<Alert['exposureAtFiring']>;
interface Payout { id: string | null; amount: string | null; coversTo: string; paidAt: string; paid: boolean }
interface Payouts { settlement: 'payouts' | 'days' | 'none'; items: Payout[] }

const SPAN = 7 * DAY;
/** The hour tier's retention less a day: how far back the chart reads buckets to reach a settled-through time. */
const MAX_BACK = 35 * DAY;
const REFRESH_MS = 60_000;

const owes = (e: Exposure) => e.receivable !== '0';
const settledLine = (e: Exposure) => (e.settledThrough ? `settled through ${dateTime(e.settledThrough)}` : 'no payout yet: everything counts');

/** The exposure as tiles; each value carries `data-x="<field>"` and the API's exact amount. */
export function exposureTiles(e: Exposure): Raw {
  const tile = (field: string, label: string, value: string, sub: string | Raw, cls = '') =>
    html`<div class="kpi ${cls}"><div class="label">${label}</div><div class="value" data-x="${field}">${value}</div><div class="sub">${sub}</div></div>`;
  const proj = e.projectedReceivable !== '0';
  return html`
    ${tile('receivable', 'Receivable now', krwExact(e.receivable), owes(e) ? 'owed back: canceled more than approved since the payout' : 'owes nothing', owes(e) ? 'bad' : '')}
    ${tile('projectedReceivable', 'Projected at next payout', krwExact(e.projectedReceivable), 'if the last hour continues', proj ? 'bad' : '')}
    ${tile('netSinceSettled', 'Net since settled', krwExact(e.netSinceSettled), settledLine(e))}
    ${tile('approvedSinceSettled', 'Approved since', krwExact(e.approvedSinceSettled), e.settledThrough ? html`since <span data-x="settledThrough" data-v="${e.settledThrough}">${dateTime(e.settledThrough)}</span>` : 'since the first payment')}
    ${tile('canceledSinceSettled', 'Canceled since', krwExact(e.canceledSinceSettled), 'cancels of payments paid out included')}
    ${tile('nextPayoutAt', 'Next payout', e.nextPayoutAt ? dateTime(e.nextPayoutAt) : '—', e.nextPayoutAt ? 'the receivable is netted or clawed back then' : 'none scheduled')}`;
}

/** The merchant page's money-at-risk card: tiles and the net-position chart, re-read every minute. */
export function merchantExposure(el: HTMLElement, id: string): () => void {
  let disposed = false;
  let chart: Chart | null = null;
  render(el, html`
    <h2>Money at risk <span class="muted small" id="x-settled"></span></h2>
    <div class="kpis" id="x-tiles"><p class="muted small">Loading…</p></div>
    <h3>Net position since the last payout, against payouts <span class="muted small">last 7 days, per hour; below zero the merchant owes</span></h3>
    <div id="c-net"></div>`);

  async function load(): Promise<void> {
    const now = Date.now();
    const [e, p] = await Promise.all([
      api<Exposure>(`/api/merchants/${encodeURIComponent(id)}/exposure`),
      api<Payouts>(`/api/merchants/${encodeURIComponent(id)}/payouts?limit=100`),
    ]);
    if (disposed) return;
    $('#x-settled', el).textContent = settledLine(e);
    render($('#x-tiles', el), exposureTiles(e));
    const marks: PayoutMark[] = p.items.map((x) => ({ coversTo: Date.parse(x.coversTo), paidAt: Date.parse(x.paidAt) }));
    const end = Math.floor(now / HOUR) * HOUR + HOUR;
    const start = end - SPAN;
    const sStart = settledAt(marks, start);
    const from = Math.max(end - MAX_BACK, Math.min(start, sStart === null ? start : Math.floor(sStart / HOUR) * HOUR));
    const r = await api<{ points: ApiPoint[] }>(`/api/merchants/${encodeURIComponent(id)}/series?from=${new Date(from).toISOString()}&to=${new Date(end).toISOString()}&step=1h`);
    if (disposed) return;
    const buckets = fill(parsePoints(r.points), from, end, HOUR);
    // x: each hour's end up to now, now itself, then on to just after the next payout (empty: where it lands)
    const next = e.nextPayoutAt ? Date.parse(e.nextPayoutAt) : null;
    const times: number[] = [];
    for (let t = start + HOUR; t < now; t += HOUR) times.push(t);
    times.push(now);
    const stop = Math.min(next === null ? end : Math.floor(next / HOUR) * HOUR + 2 * HOUR, now + 3 * DAY);
    for (let t = end; t <= stop; t += HOUR) times.push(t);
    const net = netPosition(buckets, HOUR, marks, times, now, Number(e.netSinceSettled));
    // payouts as bars at the hour they are paid (amount; the D+N schedule has none), and as lines on the canvas
    const paidAmount = new Map<number, number>();
    for (const x of p.items) if (x.amount !== null) {
      const h = Math.ceil(Date.parse(x.paidAt) / HOUR) * HOUR;
      paidAmount.set(h, (paidAmount.get(h) ?? 0) + Number(x.amount));
    }
    const bars = times.map((t) => paidAmount.get(t) ?? null);
    // dashed lines: payouts without an amount (the D+N schedule), the next payout (amber) and now (blue)
    const lines = p.items.filter((x) => Date.parse(x.paidAt) >= start && (!x.paid || x.amount === null))
      .map((x) => ({ x: Date.parse(x.paidAt) / 1000, color: x.paid ? '#6b7280' : '#d97706' }));
    lines.push({ x: now / 1000, color: '#2563eb' });
    const data: [number[], ...(number | null)[][]] = [secs(times), net, bars];
    if (chart) { chart.destroy(); chart = null; }
    chart = new Chart($('#c-net', el), [
      { label: 'net position', color: '#0f766e', fmt: 'krw', width: 2, fill: true },
      { label: 'payout', color: '#6366f1', fmt: 'krw', bars: true, scale: 'p' }], data, 220, lines);
  }

  const run = () => load().catch((err) => {
    if (!disposed) render($('#x-tiles', el), html`<p class="error small">The exposure could not be read (${(err as Error).message}).</p>`);
  });
  void run();
  const timer = setInterval(() => void run(), REFRESH_MS);
  return () => { disposed = true; clearInterval(timer); chart?.destroy(); };
}

/** The alert page's money at risk: the exposure when the alert fired beside the exposure now. */
export function alertExposure(el: HTMLElement, a: Alert): () => void {
  let disposed = false;
  const row = (label: string, field: keyof Exposure, f: Exposure | null, n: Exposure | null, fmt: (v: string | null) => string = krwExact) => html`<tr>
    <th>${label}</th><td class="num" data-firing="${field}">${f ? fmt(f[field] as string) : '—'}</td><td class="num" data-now="${field}">${n ? fmt(n[field] as string) : '…'}</td></tr>`;
  const when = (v: string | null) => (v ? dateTime(v) : '—');
  const draw = (now: Exposure | null, err = '') => {
    const f = a.exposureAtFiring;
    render(el, html`
      <h2>Money at risk ${now && owes(now) ? html`<span class="badge firing">owes ${krw(now.receivable)}</span>` : ''}</h2>
      <table class="table compact kv exposure-cmp">
        <thead><tr><th></th><th class="num">at firing</th><th class="num">now</th></tr></thead>
        <tbody>
          ${row('Receivable', 'receivable', f, now)}
          ${row('Projected at next payout', 'projectedReceivable', f, now)}
          ${row('Net since settled', 'netSinceSettled', f, now)}
          ${row('Approved since', 'approvedSinceSettled', f, now)}
          ${row('Canceled since', 'canceledSinceSettled', f, now)}
          ${row('Settled through', 'settledThrough', f, now, when)}
          ${row('Next payout', 'nextPayoutAt', f, now, when)}
        </tbody>
      </table>
      ${f ? '' : html`<p class="muted small">The exposure at firing was not recorded for this alert.</p>`}
      ${err ? html`<p class="error small">The exposure now could not be read (${err}).</p>` : ''}`);
  };
  draw(null);
  const load = () => api<Exposure>(`/api/merchants/${encodeURIComponent(a.merchantId)}/exposure`)
    .then((e) => { if (!disposed) draw(e); })
    .catch((err) => { if (!disposed) draw(null, (err as Error).message); });
  void load();
  const timer = setInterval(() => void load(), REFRESH_MS);
  return () => { disposed = true; clearInterval(timer); };
}

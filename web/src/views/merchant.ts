/**
 * One merchant: KPIs against their baselines, trend charts at 1m/1h/1d, the cancel rate against its 7-day
 * baseline, today's cumulative volume against the same time of day on the same weekdays of the last 4 weeks
 * (holidays left out; the 7-day mean when fewer than 2), as volume_drop judges it, evaluations and alert history;
 * the money at risk (exposure and net position since the last payout, views/exposure.ts) and the payout hold.
 * Live minutes arrive over the WebSocket.
 */
import { defaultHolidays } from '../../../lib/holidays-kr.ts';
import { dayStart } from '../../../lib/time.ts';
import { api, HttpError, session, type Alert } from '../api.ts';
import { Chart, secs } from '../charts.ts';
import { $, dateTime, html, int, krw, pct, render, RULE_LABEL } from '../format.ts';
import { live, type SeriesMessage } from '../live.ts';
import {
  baselineAt, baselineRate, bucketRate, cumulative, DAY, fill, HOUR, merge, MINUTE, parsePoints, rollingRate, sameWeekdayBaseline, sum,
  type ApiPoint, type P,
} from '../series.ts';
import { merchantExposure } from './exposure.ts';
import { holdPanel } from './holds.ts';
import { alertRow } from './home.ts';

/** The holidays the same-weekday baseline leaves out: the rules' default (lib/holidays-kr.ts). */
const HOLIDAYS: ReadonlySet<string> = new Set(defaultHolidays());

type Step = '1m' | '1h' | '1d';
const VIEW: Record<Step, { label: string; span: number; stepMs: number }> = {
  '1m': { label: 'last 3 hours, per minute', span: 3 * HOUR, stepMs: MINUTE },
  '1h': { label: 'last 7 days, per hour', span: 7 * DAY, stepMs: HOUR },
  '1d': { label: 'last 60 days, per day', span: 60 * DAY, stepMs: DAY },
};
const RATE_WINDOW_MIN = 60;
const MULTIPLIER = 2;

interface Evaluation { rule: string; minute: string; status: string; reason: string | null; evidence: Record<string, any> }

async function series(id: string, from: number, to: number, step: Step): Promise<P[]> {
  const r = await api<{ points: ApiPoint[] }>(`/api/merchants/${encodeURIComponent(id)}/series?from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}&step=${step}`);
  return parsePoints(r.points);
}

const align = (ms: number, step: Step) => (step === '1d' ? dayStart(ms, session.tz) : Math.floor(ms / VIEW[step].stepMs) * VIEW[step].stepMs);

export function merchant(main: HTMLElement, id: string): () => void {
  let step: Step = (sessionStorage.getItem('riskmon.step') as Step) || '1m';
  render(main, html`
    <section class="card mhead">
      <div class="title"><a href="#/" class="muted">← alerts</a><h1><span class="mid">${id}</span> <span id="m-name"></span></h1><span class="muted" id="m-cat"></span></div>
      <div class="kpis" id="kpis"></div>
      <div class="evals" id="evals"></div>
    </section>
    <section class="card exposure" id="m-exposure"></section>
    <section class="card hold" id="m-hold"></section>
    <div class="toolbar">
      <div class="tabs" id="tabs">${(['1m', '1h', '1d'] as Step[]).map((s) => html`<button data-step="${s}">${s}</button>`)}</div>
      <span class="muted small" id="view-label"></span>
    </div>
    <div class="charts">
      <section class="card"><h3>Approvals and cancels</h3><div id="c-counts"></div></section>
      <section class="card"><h3>Approved and canceled amount</h3><div id="c-amounts"></div></section>
      <section class="card"><h3 id="rate-title">Cancel rate vs 7-day baseline</h3><div id="c-rate"></div></section>
      <section class="card"><h3 id="today-title">Today's approved amount vs same time, same weekdays</h3><div id="c-today"></div></section>
    </div>
    <section class="card"><h2>Alert history</h2><table class="table nav"><thead><tr><th>Fired</th><th>State</th><th>Rule</th><th>Evidence</th><th class="num">₩ at risk</th><th>Owner</th><th>Disposition</th></tr></thead><tbody id="m-alerts"></tbody></table></section>`);

  let todayStart = dayStart(Date.now(), session.tz);
  let hourly7d: P[] = [];
  /** 28 days of hours: the same weekdays of the same-time baseline. */
  let hourly28d: P[] = [];
  let today: P[] = [];
  let view: P[] = [];
  let viewFrom = 0;
  let disposed = false;
  const charts: Chart[] = [];

  const baseline = () => baselineRate(hourly7d);
  const sameTime = () => sameWeekdayBaseline(hourly28d, todayStart, session.tz, HOLIDAYS);

  function kpis(): void {
    const now = Date.now();
    const t = fill(today, todayStart, Math.floor(now / MINUTE) * MINUTE + MINUTE, MINUTE);
    const todaySum = sum(t);
    const last = t.slice(-RATE_WINDOW_MIN);
    const lastSum = sum(last);
    const b = baseline();
    const rate = lastSum.approvals > 0 ? lastSum.cancels / lastSum.approvals : null;
    const expected = baselineAt(sameTime(), now);
    const vsBase = expected && expected > 0 ? todaySum.approvedAmount / expected : null;
    const tile = (label: string, value: string, sub: string, cls = '') => html`<div class="kpi ${cls}"><div class="label">${label}</div><div class="value">${value}</div><div class="sub">${sub}</div></div>`;
    render($('#kpis', main), html`
      ${tile('Approved today', krw(todaySum.approvedAmount), `${vsBase === null ? 'no baseline' : `${pct(vsBase, 0)} of usual by now (${krw(expected)})`}`, vsBase !== null && vsBase <= 0.5 ? 'bad' : '')}
      ${tile('Cancel rate, last 60 min', pct(rate, 2), `baseline ${pct(b.rate, 2)}${rate !== null && b.rate ? ` · ${(rate / b.rate).toFixed(1)}×` : ''}`, rate !== null && b.rate !== null && rate >= MULTIPLIER * b.rate ? 'bad' : '')}
      ${tile('Approvals today', int(todaySum.approvals), `${int(lastSum.approvals)} in the last 60 min`)}
      ${tile('Cancels today', int(todaySum.cancels), `${krw(todaySum.canceledAmount)} canceled`)}
      ${tile('7-day baseline', `${int(Math.round(b.approvals / 7))}/day`, `approvals per day · ${krw(sameTime().v[24])} per day`)}`);
  }

  function drawCharts(): void {
    const now = Date.now();
    const v = VIEW[step];
    const to = align(now, step) + (step === '1d' ? DAY : v.stepMs);
    const pts = step === '1d' ? view : fill(view, viewFrom, to, v.stepMs);
    const x = secs(pts.map((p) => p.t));
    const b = baseline().rate;
    let rate: (number | null)[];
    let rx = x;
    if (step === '1m') {
      // The rule's window: 60 minutes ending with each minute; the extra hour loaded before the view feeds it.
      rate = rollingRate(pts, RATE_WINDOW_MIN);
      const start = pts.findIndex((p) => p.t >= now - v.span);
      rate = rate.slice(start); rx = x.slice(start);
    } else rate = bucketRate(pts);
    const shown = step === '1m' ? pts.slice(pts.length - rx.length) : pts;
    const counts: [number[], ...(number | null)[][]] = [rx, shown.map((p) => p.approvals), shown.map((p) => p.cancels)];
    const amounts: [number[], ...(number | null)[][]] = [rx, shown.map((p) => p.approvedAmount), shown.map((p) => p.canceledAmount)];
    const rates: [number[], ...(number | null)[][]] = [rx, rate, rx.map(() => b), rx.map(() => (b === null ? null : MULTIPLIER * b))];
    // Today: cumulative per minute until now; the baseline over the whole day.
    const dayMin = fill(today, todayStart, todayStart + DAY, MINUTE);
    const nowIdx = Math.floor((now - todayStart) / MINUTE);
    const cum = cumulative(dayMin).map((c, i) => (i <= nowIdx ? c : null));
    const st = sameTime();
    $('#today-title', main).textContent = st.days.length
      ? `Today's approved amount vs same time, same weekday (${st.days.map((d) => d.slice(5)).join(', ')})`
      : "Today's approved amount vs same time, last 7 days";
    const tod: [number[], ...(number | null)[][]] = [secs(dayMin.map((p) => p.t)), cum, dayMin.map((p) => baselineAt(st, p.t)), dayMin.map((p) => { const y = baselineAt(st, p.t); return y === null ? null : y * 0.5; })];
    $('#rate-title', main).textContent = step === '1m' ? `Cancel rate (rolling 60 min) vs 7-day baseline` : `Cancel rate per ${step === '1h' ? 'hour' : 'day'} vs 7-day baseline`;
    if (!charts.length) {
      charts.push(
        new Chart($('#c-counts', main), [
          { label: 'approvals', color: '#2563eb', fmt: 'count', bars: step !== '1m', fill: step === '1m' },
          { label: 'cancels', color: '#dc2626', fmt: 'count', scale: 'c' }], counts),
        new Chart($('#c-amounts', main), [
          { label: 'approved', color: '#0f766e', fmt: 'krw', fill: true },
          { label: 'canceled', color: '#ea580c', fmt: 'krw', scale: 'c' }], amounts),
        new Chart($('#c-rate', main), [
          { label: 'cancel rate', color: '#dc2626', fmt: 'pct', width: 2 },
          { label: 'baseline', color: '#6b7280', fmt: 'pct', dash: [4, 4] },
          { label: `${MULTIPLIER}× baseline`, color: '#f59e0b', fmt: 'pct', dash: [2, 3] }], rates),
        new Chart($('#c-today', main), [
          { label: 'today', color: '#2563eb', fmt: 'krw', width: 2, fill: true },
          { label: 'same time, usual', color: '#6b7280', fmt: 'krw', dash: [4, 4] },
          { label: 'alert line (50%)', color: '#f59e0b', fmt: 'krw', dash: [2, 3] }], tod),
      );
    } else {
      charts[0].set(counts); charts[1].set(amounts); charts[2].set(rates); charts[3].set(tod);
    }
  }

  async function loadView(): Promise<void> {
    const now = Date.now();
    const v = VIEW[step];
    viewFrom = align(now - v.span - (step === '1m' ? RATE_WINDOW_MIN * MINUTE : 0), step);
    const to = align(now, step) + (step === '1d' ? DAY + 3 * HOUR : v.stepMs);
    view = await series(id, viewFrom, to, step);
    $('#view-label', main).textContent = v.label;
    main.querySelectorAll<HTMLButtonElement>('#tabs button').forEach((b) => b.classList.toggle('on', b.dataset.step === step));
    charts.splice(0).forEach((c) => c.destroy());
    drawCharts();
  }

  async function load(): Promise<void> {
    todayStart = dayStart(Date.now(), session.tz);
    const [h, t] = await Promise.all([
      series(id, todayStart - 28 * DAY, todayStart, '1h'),
      series(id, todayStart, todayStart + DAY, '1m'),
    ]);
    hourly28d = h; hourly7d = h.filter((p) => p.t >= todayStart - 7 * DAY); today = t;
    kpis();
    await loadView();
  }

  const showError = (err: unknown) => {
    if (disposed) return;
    const msg = err instanceof HttpError ? err.message : 'could not load the series';
    render($('#kpis', main), html`<p class="error">${msg}</p>`);
  };
  // A failed load (the API restarting, a dependency briefly down: 5xx or no answer) is tried again twice before the
  // page shows the error; a 4xx is shown at once.
  const loadRetrying = async (): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await load();
      } catch (err) {
        if (disposed || attempt >= 3 || (err instanceof HttpError && err.status < 500)) throw err;
        await new Promise((r) => setTimeout(r, 1000 * attempt));
      }
    }
  };
  void loadRetrying().catch(showError);

  api<{ name: string; category: string }>(`/api/merchants/${encodeURIComponent(id)}`)
    .then((m) => { $('#m-name', main).textContent = m.name; $('#m-cat', main).textContent = m.category; })
    .catch(() => { $('#m-cat', main).textContent = 'not in the merchants table'; });

  api<{ items: Evaluation[]; note: string | null }>(`/api/merchants/${encodeURIComponent(id)}/evaluations`).then((r) => {
    render($('#evals', main), r.items.length
      ? html`${r.items.map((e) => html`<div class="eval"><span class="badge ${e.status}">${e.status.replace('_', ' ')}</span> <b>${RULE_LABEL[e.rule] ?? e.rule}</b> <span class="muted">at ${dateTime(e.minute)}</span>${e.reason ? html` — <span>${e.reason}</span>` : ''}</div>`)}`
      : html`<div class="eval muted">${r.note}</div>`);
  }).catch(() => {});

  api<{ items: Alert[] }>(`/api/alerts?merchantId=${encodeURIComponent(id)}&limit=50`).then((r) => {
    render($('#m-alerts', main), r.items.length ? html`${r.items.map((a) => alertRow(a, { showMerchant: false }))}` : html`<tr><td colspan="7" class="muted">No alerts for this merchant.</td></tr>`);
  }).catch(() => {});

  $('#tabs', main).addEventListener('click', (e) => {
    const b = (e.target as HTMLElement).closest('button');
    if (!b?.dataset.step || b.dataset.step === step) return;
    step = b.dataset.step as Step;
    sessionStorage.setItem('riskmon.step', step);
    void loadView().catch(showError);
  });

  const onSeries = (m: SeriesMessage) => {
    if (m.merchantId !== id || !hourly7d) return;
    const pts = parsePoints(m.points);
    if (dayStart(Date.now(), session.tz) !== todayStart) { void load().catch(showError); return; } // midnight
    today = merge(today, pts.filter((p) => p.t >= todayStart));
    if (step === '1m') view = merge(view, pts);
    kpis();
    if (charts.length) drawCharts();
  };
  live.onSeries.add(onSeries);
  live.subscribe(id);
  const disposeHold = holdPanel($('#m-hold', main), id);
  const disposeExposure = merchantExposure($('#m-exposure', main), id);
  return () => {
    disposed = true;
    disposeHold();
    disposeExposure();
    live.onSeries.delete(onSeries);
    live.unsubscribe(id);
    charts.forEach((c) => c.destroy());
  };
}

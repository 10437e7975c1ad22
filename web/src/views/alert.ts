/**
 * One alert, where an analyst works it: the evidence, the merchant's minutes around the firing minute, the
 * transitions, the notes and the triage history, the payout hold with the merchant's money at risk (at firing and
 * now), and the triage controls the key's role allows (acknowledge,
 * assign, note, close with a disposition). Keys: a acknowledge · m assign to me · n write a note · d disposition ·
 * Esc back to the feed. Other analysts' changes arrive as alert_update over the WebSocket.
 */
import { api, canTriage, HttpError, session, type AlertDetail, type AlertUpdateMessage } from '../api.ts';
import { Chart, secs } from '../charts.ts';
import { $, dateTime, DISPOSITION_LABEL, evidenceLine, html, int, krw, pct, render, RULE_LABEL, type Raw } from '../format.ts';
import { live } from '../live.ts';
import { fill, HOUR, MINUTE, parsePoints, rollingRate, type ApiPoint, type P } from '../series.ts';
import { alertExposure } from './exposure.ts';
import { holdPanel } from './holds.ts';
import { dispositionBadge, ownerCell } from './home.ts';

const BEFORE = 3 * HOUR;
const AFTER = HOUR;
const RATE_WINDOW_MIN = 60;
const NOTE_MAX = 4000;

/** Evidence as label/value rows, nested objects flattened to dotted labels; amounts and rates readable. */
function evidenceRows(e: unknown, prefix = ''): [string, string][] {
  if (e === null || typeof e !== 'object') return [[prefix || 'value', String(e)]];
  return Object.entries(e as Record<string, unknown>).flatMap(([k, v]): [string, string][] => {
    const label = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) return evidenceRows(v, label);
    if (typeof v === 'number' && /rate|ratio|vsBaseline|threshold/i.test(k)) return [[label, `${pct(v, 2)}  (${v})`]];
    if (/amount|average/i.test(k) && (typeof v === 'number' || (typeof v === 'string' && /^\d+$/.test(v)))) return [[label, `${krw(v)}  (${Number(v).toLocaleString('en-US')})`]];
    if (typeof v === 'number') return [[label, Number.isInteger(v) ? int(v) : String(v)]];
    return [[label, Array.isArray(v) ? JSON.stringify(v) : String(v)]];
  });
}

const ACTION_LABEL: Record<string, string> = { ack: 'acknowledged', assign: 'assigned', note: 'noted', disposition: 'closed as' };

export function alertPage(main: HTMLElement, id: string): () => void {
  render(main, html`
    <section class="card ahead">
      <div class="title"><a href="#/" class="muted" title="back to the feed (Esc)">← alerts</a><h1 id="a-title">Alert <span class="mid">#${id}</span></h1><span id="a-state"></span></div>
      <div class="meta" id="a-meta"></div>
      <div class="triage" id="triage"></div>
    </section>
    <div class="agrid">
      <div class="acol">
        <section class="card"><h2>Evidence</h2><p class="ev" id="a-summary"></p><table class="table compact kv" id="a-evidence"></table></section>
        <section class="card"><h3>Approvals and cancels per minute around the firing minute</h3><div id="c-a-counts"></div></section>
        <section class="card"><h3 id="c-a-second-title">&nbsp;</h3><div id="c-a-second"></div></section>
      </div>
      <div class="acol">
        <section class="card hold" id="a-hold"></section>
        <section class="card exposure" id="a-exposure"></section>
        <section class="card"><h2>Notes <span class="muted small" id="a-note-count"></span></h2><div id="a-notes"></div><div id="a-note-form"></div></section>
        <section class="card"><h2>Transitions</h2><table class="table compact" id="a-transitions"></table></section>
        <section class="card"><h2>Triage history</h2><table class="table compact" id="a-history"></table></section>
      </div>
    </div>`);

  let alert: AlertDetail | null = null;
  let disposed = false;
  let disposeHold: (() => void) | null = null;
  let disposeExposure: (() => void) | null = null;
  const charts: Chart[] = [];
  const mayTriage = canTriage();
  let message = '';
  let merchantName = '';
  /** What the analyst has typed or chosen in the triage forms and not sent yet; cleared when its form is sent. */
  const draft: { assignee?: string; disposition?: string; dispNote?: string } = {};

  function drawTriage(a: AlertDetail): void {
    // A redraw (another analyst's change arrives live) must not take what this analyst is typing or has chosen.
    const focused = main.querySelector('#triage')?.contains(document.activeElement) ? document.activeElement?.id : undefined;
    const status = html`
      <div class="tstate">
        <span><b>Owner</b> ${ownerCell(a)}</span>
        <span><b>Acknowledged</b> ${a.ack ? html`by ${a.ack.by} <span class="muted">${dateTime(a.ack.at)}</span>` : html`<span class="muted">no</span>`}</span>
        <span><b>Disposition</b> ${dispositionBadge(a)}${a.disposition ? html` <span class="muted">by ${a.disposition.by}, ${dateTime(a.disposition.at)}</span>${a.disposition.note ? html` — <q>${a.disposition.note}</q>` : ''}` : ''}</span>
      </div>`;
    if (!mayTriage) {
      render($('#triage', main), html`${status}<p class="muted small">Your key is a ${session.role}: it reads alerts; an analyst or admin key triages them.</p>`);
      return;
    }
    render($('#triage', main), html`${status}
      <div class="tcontrols">
        <button id="ack" ${a.ack ? 'disabled' : ''} title="acknowledge: you are on it (a)">${a.ack ? 'Acknowledged' : 'Acknowledge'} <kbd>a</kbd></button>
        <form id="assign-form" class="inline-form" autocomplete="off">
          <label for="assignee">Assignee</label>
          <input id="assignee" name="assignee" maxlength="100" placeholder="analyst name" value="${draft.assignee ?? a.assignee ?? ''}">
          <button type="submit">Assign</button>
          <button type="button" id="assign-me" title="assign to yourself (m)">To me <kbd>m</kbd></button>
          ${a.assignee ? html`<button type="button" id="unassign">Unassign</button>` : ''}
        </form>
        <form id="disp-form" class="inline-form" autocomplete="off">
          <label for="disposition">Close as</label>
          <select id="disposition" name="disposition" required title="disposition (d)">
            <option value="">choose…</option>
            ${(['confirmed', 'false_positive', 'benign'] as const).map((v) => html`<option value="${v}" ${(draft.disposition ?? a.disposition?.value) === v ? 'selected' : ''}>${DISPOSITION_LABEL[v]}</option>`)}
          </select>
          <input id="disp-note" name="note" maxlength="${NOTE_MAX}" placeholder="why (optional)" size="28" value="${draft.dispNote ?? ''}">
          <button type="submit">${a.disposition ? 'Change' : 'Close'} <kbd>d</kbd></button>
        </form>
      </div>
      <p class="error small" id="triage-error" role="alert">${message}</p>`);
    if (focused) (main.querySelector(`#${focused}`) as HTMLElement | null)?.focus();
    const keep = (sel: string, event: string, into: keyof typeof draft) =>
      $(sel, main).addEventListener(event, (e) => { draft[into] = (e.target as HTMLInputElement | HTMLSelectElement).value; });
    keep('#assignee', 'input', 'assignee');
    keep('#disposition', 'change', 'disposition');
    keep('#disp-note', 'input', 'dispNote');
    const act = async (path: string, body: unknown, sent: (keyof typeof draft)[] = []) => {
      try {
        message = '';
        const updated = await api<AlertDetail>(`/api/alerts/${encodeURIComponent(id)}/${path}`, { method: 'POST', body });
        for (const k of sent) delete draft[k];
        show(updated);
      } catch (err) {
        message = err instanceof HttpError ? `${err.body.field ? `${err.body.field}: ` : ''}${err.message}` : 'the request failed';
        $('#triage-error', main).textContent = message;
      }
    };
    $('#ack', main).addEventListener('click', () => void act('ack', {}));
    $('#assign-form', main).addEventListener('submit', (e) => {
      e.preventDefault();
      const v = ($('#assignee', main) as HTMLInputElement).value.trim();
      void act('assign', { assignee: v || null }, ['assignee']);
    });
    $('#assign-me', main).addEventListener('click', () => void act('assign', { assignee: session.name }, ['assignee']));
    main.querySelector('#unassign')?.addEventListener('click', () => void act('assign', { assignee: null }, ['assignee']));
    $('#disp-form', main).addEventListener('submit', (e) => {
      e.preventDefault();
      const disposition = ($('#disposition', main) as HTMLSelectElement).value;
      void act('disposition', { disposition, note: ($('#disp-note', main) as HTMLInputElement).value }, ['disposition', 'dispNote']);
    });
  }

  function drawNoteForm(): void {
    if (!mayTriage) return;
    render($('#a-note-form', main), html`
      <form id="note-form" class="note-form">
        <label for="note-text" class="small muted">Add a note (what the merchant said, what you checked) — <kbd>n</kbd></label>
        <textarea id="note-text" rows="3" maxlength="${NOTE_MAX}" required></textarea>
        <div class="row"><button type="submit">Add note</button><span class="muted small" id="note-left">${NOTE_MAX} characters left · Ctrl+Enter adds</span></div>
      </form>`);
    const ta = $('#note-text', main) as HTMLTextAreaElement;
    ta.addEventListener('input', () => { $('#note-left', main).textContent = `${NOTE_MAX - ta.value.length} characters left · Ctrl+Enter adds`; });
    ta.addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) $('#note-form', main).dispatchEvent(new Event('submit', { cancelable: true })); });
    $('#note-form', main).addEventListener('submit', async (e) => {
      e.preventDefault();
      if (!ta.value.trim()) return;
      try {
        show(await api<AlertDetail>(`/api/alerts/${encodeURIComponent(id)}/notes`, { method: 'POST', body: { text: ta.value } }));
        ta.value = '';
        ta.blur(); // back to the page's keys
        $('#note-left', main).textContent = `${NOTE_MAX} characters left · Ctrl+Enter adds`;
      } catch (err) {
        $('#note-left', main).textContent = err instanceof HttpError ? err.message : 'the note was not saved';
      }
    });
  }

  function show(a: AlertDetail): void {
    if (disposed) return;
    const first = alert === null;
    alert = a;
    render($('#a-title', main), html`${RULE_LABEL[a.rule] ?? a.rule} · merchant <a class="mid" href="#/merchants/${a.merchantId}">${a.merchantId}</a> <span id="a-mname">${merchantName}</span>`);
    render($('#a-state', main), html`<span class="badge ${a.state}">${a.state}</span>`);
    render($('#a-meta', main), html`<span>alert <span class="mid">#${a.id}</span></span><span>fired ${dateTime(a.firedAt)}</span>${a.resolvedAt ? html`<span>resolved ${dateTime(a.resolvedAt)}</span>` : ''}<span>rule version <span class="mid">${a.ruleVersion}</span></span>`);
    drawTriage(a);
    $('#a-summary', main).textContent = evidenceLine(a);
    render($('#a-evidence', main), html`${evidenceRows(a.evidence).map(([k, v]) => html`<tr><th>${k}</th><td>${v}</td></tr>`)}`);
    $('#a-note-count', main).textContent = a.notes.length ? String(a.notes.length) : '';
    render($('#a-notes', main), a.notes.length
      ? html`<ol class="notes">${a.notes.map((n) => html`<li><div class="nhead"><b>${n.by}</b> <span class="muted small">${dateTime(n.at)}</span></div><div class="ntext">${n.text}</div></li>`)}</ol>`
      : html`<p class="muted small">No notes yet.</p>`);
    render($('#a-transitions', main), html`${a.transitions.map((t) => html`<tr><td class="nowrap">${dateTime(t.minute)}</td><td><span class="badge ${t.kind === 'resolved' ? 'resolved' : 'firing'}">${t.kind}</span></td><td class="ev small">${evidenceLine({ rule: a.rule, evidence: t.evidence })}</td></tr>`)}`);
    render($('#a-history', main), a.history.length
      ? html`${[...a.history].reverse().map((h) => html`<tr><td class="nowrap small">${dateTime(h.at)}</td><td>${h.by}</td><td>${historyLine(h)}</td></tr>`)}`
      : html`<tr><td class="muted small">Nobody has triaged this alert yet.</td></tr>`);
    if (first) {
      drawNoteForm();
      disposeHold = holdPanel($('#a-hold', main), a.merchantId, { alertId: a.id });
      disposeExposure = alertExposure($('#a-exposure', main), a);
      api<{ name: string }>(`/api/merchants/${encodeURIComponent(a.merchantId)}`).then((m) => {
        merchantName = m.name;
        const el = main.querySelector('#a-mname');
        if (el) el.textContent = m.name;
      }).catch(() => {});
      void drawCharts(a).catch(() => render($('#c-a-counts', main), html`<p class="muted small">The merchant's series could not be read.</p>`));
    }
  }

  async function drawCharts(a: AlertDetail): Promise<void> {
    const fired = Date.parse(a.firedAt);
    const resolved = a.resolvedAt ? Date.parse(a.resolvedAt) : null;
    const nowMin = Math.floor(Date.now() / MINUTE) * MINUTE + MINUTE;
    const from = fired - BEFORE - RATE_WINDOW_MIN * MINUTE;
    const to = Math.min(nowMin, Math.max(fired + AFTER, (resolved ?? fired) + 30 * MINUTE) + MINUTE, from + 1440 * MINUTE);
    const r = await api<{ points: ApiPoint[] }>(`/api/merchants/${encodeURIComponent(a.merchantId)}/series?from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}&step=1m`);
    if (disposed) return;
    const all: P[] = fill(parsePoints(r.points), from, to, MINUTE);
    const start = RATE_WINDOW_MIN;
    const pts = all.slice(start);
    const x = secs(pts.map((p) => p.t));
    const marks = [{ x: fired / 1000, color: '#dc2626' }, ...(resolved ? [{ x: resolved / 1000, color: '#059669' }] : [])];
    charts.push(new Chart($('#c-a-counts', main), [
      { label: 'approvals', color: '#2563eb', fmt: 'count', fill: true },
      { label: 'cancels', color: '#dc2626', fmt: 'count', scale: 'c' }], [x, pts.map((p) => p.approvals), pts.map((p) => p.cancels)], 200, marks));
    if (a.rule === 'cancel_rate_spike') {
      $('#c-a-second-title', main).textContent = 'Cancel rate (rolling 60 min) vs the baseline in the evidence';
      const rate = rollingRate(all, RATE_WINDOW_MIN).slice(start);
      const b = typeof a.evidence?.baseline?.rate === 'number' ? a.evidence.baseline.rate : null;
      const thr = typeof a.evidence?.threshold === 'number' ? a.evidence.threshold : b === null ? null : 2 * b;
      charts.push(new Chart($('#c-a-second', main), [
        { label: 'cancel rate', color: '#dc2626', fmt: 'pct', width: 2 },
        { label: 'baseline', color: '#6b7280', fmt: 'pct', dash: [4, 4] },
        { label: 'threshold', color: '#f59e0b', fmt: 'pct', dash: [2, 3] }], [x, rate, x.map(() => b), x.map(() => thr)], 200, marks));
    } else {
      $('#c-a-second-title', main).textContent = 'Approved and canceled amount per minute';
      charts.push(new Chart($('#c-a-second', main), [
        { label: 'approved', color: '#0f766e', fmt: 'krw', fill: true },
        { label: 'canceled', color: '#ea580c', fmt: 'krw', scale: 'c' }], [x, pts.map((p) => p.approvedAmount), pts.map((p) => p.canceledAmount)], 200, marks));
    }
  }

  const load = () => api<AlertDetail>(`/api/alerts/${encodeURIComponent(id)}`).then(show).catch((err) => {
    if (disposed) return;
    render(main, html`<section class="card"><a href="#/" class="muted">← alerts</a><p class="error">${err instanceof HttpError && err.status === 404 ? `There is no alert ${id}.` : `The alert could not be loaded (${(err as Error).message}).`}</p></section>`);
  });
  void load();

  const onUpdate = (m: AlertUpdateMessage) => { if (m.alert.id === id) void load(); };
  const onAlert = (m: { alert: { id: string } }) => { if (m.alert.id === id) void load(); };
  live.onUpdate.add(onUpdate);
  live.onAlert.add(onAlert);

  const onKey = (e: KeyboardEvent) => {
    const target = e.target as HTMLElement;
    const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName);
    if (e.key === 'Escape') {
      if (typing) target.blur(); else location.hash = '#/';
      return;
    }
    if (typing || e.ctrlKey || e.metaKey || e.altKey || !alert || !mayTriage) return;
    const click = (sel: string) => (main.querySelector(sel) as HTMLButtonElement | null)?.click();
    if (e.key === 'a') click('#ack');
    else if (e.key === 'm') click('#assign-me');
    else if (e.key === 'n') { e.preventDefault(); (main.querySelector('#note-text') as HTMLElement | null)?.focus(); }
    else if (e.key === 'd') { e.preventDefault(); (main.querySelector('#disposition') as HTMLElement | null)?.focus(); }
  };
  document.addEventListener('keydown', onKey);

  return () => {
    disposed = true;
    disposeHold?.();
    disposeExposure?.();
    live.onUpdate.delete(onUpdate);
    live.onAlert.delete(onAlert);
    document.removeEventListener('keydown', onKey);
    charts.forEach((c) => c.destroy());
  };
}

function historyLine(h: AlertDetail['history'][number]): Raw {
  if (h.action === 'assign') return h.value ? html`assigned to <b>${h.value}</b>` : html`unassigned`;
  if (h.action === 'disposition') return html`closed as <span class="badge disp-${h.value ?? ''}">${DISPOSITION_LABEL[h.value ?? ''] ?? h.value}</span>${h.note ? html` — <q>${h.note}</q>` : ''}`;
  if (h.action === 'note') return html`added a note`;
  return html`${ACTION_LABEL[h.action] ?? h.action}`;
}

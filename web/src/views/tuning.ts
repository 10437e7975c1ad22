/**
 * Tuning on the rules page: the versions (active, drafts, shadow), a draft editor (a form for the numbers, JSON for
 * the per-merchant overrides), backtests with their progress, and the comparison of a candidate with what the live
 * rules raised over the same period — alerts per day, the merchants only one of them flags, precision where
 * analysts have judged the alerts. Admins save drafts, activate a version, and run a shadow version.
 */
import { api, HttpError, session } from '../api.ts';
import { tzOffsetMs } from '../../../lib/time.ts';
import { $, dateTime, html, int, krw, pct, render, RULE_LABEL } from '../format.ts';

interface VersionRow { version: string; note: string; createdAt: string; createdBy: string; activatedAt: string | null; activatedBy: string | null; active: boolean }
interface Rules {
  active: { version: string; config: Config; activatedAt: string; activatedBy: string } | null;
  versions: VersionRow[];
  shadow: { version: string; startedAt: string; startedBy: string; firstMinute: string | null; lastMinute: string | null } | null;
  backtestPeriod: { from: string; to: string; limitedBy: string };
}
type Config = Record<string, any>;
interface BtAlert { rule: string; merchantId: string; firedAt: string; resolvedAt: string | null; carried?: boolean; disposition?: string | null }
interface Quality { confirmed: number; falsePositive: number; benign: number; precision: number | null }
interface Backtest {
  id: string; status: 'queued' | 'running' | 'done' | 'failed'; progress: number; from: string; to: string; version: string | null; ruleVersion: string;
  createdBy: string; error: string | null; alerts: BtAlert[];
  summary: Record<string, { fired: number; merchants: number; live: { fired: number; merchants: number } }> | null;
  vsLive: { both: { rule: string; merchantId: string; exact: boolean; live: { disposition: string | null } }[]; onlyBacktest: BtAlert[]; onlyLive: BtAlert[]; exact: boolean } | null;
  quality: Record<string, Quality> | null; liveQuality: Record<string, Quality> | null; perDay: { day: string; backtest: number; live: number }[];
  money?: { horizonDays: number; merchants: number; receivableAtFiring: string; peakReceivable: string; withheld: string; covered: string; falsePositive: { merchants: number; withheld: string } } | null;
}

/** The numbers of a config the form edits: [section, field, label, step]. */
const FIELDS: [string | null, string, string, string][] = [
  ['cancel_rate_spike', 'multiplier', 'Cancel-rate spike: multiplier (× baseline rate)', '0.1'],
  ['cancel_rate_spike', 'minApprovals', 'min approvals in the window', '1'],
  ['cancel_rate_spike', 'minCancels', 'min cancels in the window', '1'],
  ['cancel_rate_spike', 'minBaselineApprovals', 'min baseline approvals', '1'],
  ['cancel_rate_spike', 'maxPValue', 'significance: max p-value (1 = off)', 'any'],
  ['volume_drop', 'ratio', 'Volume drop: fires at ≤ ratio × usual', '0.05'],
  ['volume_drop', 'minDailyAmount', 'eligible from daily amount (KRW)', '1'],
  ['volume_drop', 'minElapsedMinutes', 'not before minute of the day', '1'],
  ['volume_drop', 'minBaselineAmount', 'min same-time baseline (KRW)', '1'],
  ['volume_spike', 'multiplier', 'Volume spike: fires at ≥ multiplier × usual', '0.5'],
  ['volume_spike', 'minWindowAmount', 'min approved in the window (KRW)', '1'],
  ['lifecycle', 'resolveAfterMinutes', 'Lifecycle: resolve after clear minutes', '1'],
  ['lifecycle', 'renotifyMinutes', 're-notify every (minutes)', '1'],
  [null, 'windowMinutes', 'Window (minutes)', '1'],
  [null, 'baselineDays', 'Baseline days', '1'],
];
const isAdmin = () => session.role === 'admin';
/** Analysts and admins start backtests; viewers read. */
const canTriage = () => session.role !== 'viewer';
/** A datetime-local value in the server's day zone (the zone the rest of the dashboard shows), and back. */
const localInput = (iso: string) => { const t = Date.parse(iso); return new Date(t + tzOffsetMs(t, session.tz)).toISOString().slice(0, 16); };
const fromLocalInput = (v: string) => { const t = Date.parse(`${v}Z`); return new Date(t - tzOffsetMs(t - tzOffsetMs(t, session.tz), session.tz)).toISOString(); };

export function tuningSections(root: HTMLElement): () => void {
  const el = document.createElement('div');
  el.className = 'tuning';
  root.append(el);
  render(el, html`
    <section class="card" id="versions-card"><h2>Rule versions</h2><div id="versions" class="muted">Loading…</div></section>
    <section class="card" id="draft-card">
      <h2>Draft <span class="muted small" id="draft-base"></span></h2>
      <form id="draft" class="draft-form" autocomplete="off">
        <div class="fields">${FIELDS.map(([s, f, label, step]) => html`<label>${label}<input type="number" step="${step}" name="${s ? `${s}.${f}` : f}" data-section="${s ?? ''}" data-field="${f}"></label>`)}
          <label>cancel_rate_spike enabled <input type="checkbox" name="cancel_rate_spike.enabled" data-section="cancel_rate_spike" data-field="enabled"></label>
          <label>volume_drop enabled <input type="checkbox" name="volume_drop.enabled" data-section="volume_drop" data-field="enabled"></label>
          <label>volume_spike enabled <input type="checkbox" name="volume_spike.enabled" data-section="volume_spike" data-field="enabled"></label>
        </div>
        <label class="wide">Composed rules (JSON list: {"name","metric","baseline","compare","k", guards}; see docs/detection.md)<textarea name="composed" rows="5" spellcheck="false" placeholder='[{"name":"cancel_amount","metric":"cancel_amount_rate","baseline":"last_7_days","compare":"multiple","k":3,"minApprovals":10,"minCancels":1,"minBaselineApprovals":100}]'></textarea></label>
        <label class="wide">Per-merchant overrides (JSON: merchantId → {cancel_rate_spike?, volume_drop?})<textarea name="overrides" rows="5" spellcheck="false"></textarea></label>
        <label class="wide">Note <input name="note" maxlength="2000" placeholder="why this change"></label>
        <div class="row">
          <label>From <input type="datetime-local" name="from"></label><label>To <input type="datetime-local" name="to"></label>
          <span class="muted small" id="period-note"></span>
        </div>
        <div class="row buttons">
          <button type="button" id="bt-draft" ${canTriage() ? '' : 'disabled'}>Backtest this draft</button>
          <button type="button" id="save-draft" ${isAdmin() ? '' : 'hidden'}>Save as a new version</button>
          <span id="draft-msg" class="small" role="status"></span>
        </div>
      </form>
    </section>
    <section class="card" id="backtest-card"><h2>Backtest <span class="muted small" id="bt-title"></span></h2><div id="backtest" class="muted">Start one from the draft, or from a version above.</div></section>`);

  let rules: Rules | null = null;
  let polling = 0;
  let stopped = false;
  const form = $('#draft', el) as HTMLFormElement;
  const msg = (text: string, bad = false) => { const m = $('#draft-msg', el); m.textContent = text; m.className = `small ${bad ? 'error' : 'ok'}`; };

  /** The version the draft starts from: what the form does not edit (holidays, baselines) is carried over. */
  let startConfig: Config = {};
  const fill = (version: string, c: Config) => {
    startConfig = c;
    $('#draft-base', el).textContent = `starting from ${version}`;
    form.querySelectorAll<HTMLInputElement>('input[data-field]').forEach((i) => {
      const v = i.dataset.section ? c[i.dataset.section]?.[i.dataset.field!] : c[i.dataset.field!];
      if (i.type === 'checkbox') i.checked = Boolean(v); else i.value = v === undefined ? '' : String(v);
    });
    (form.elements.namedItem('overrides') as HTMLTextAreaElement).value = JSON.stringify(c.overrides ?? {}, null, 2);
    (form.elements.namedItem('composed') as HTMLTextAreaElement).value = c.composed?.length ? JSON.stringify(c.composed, null, 2) : '';
  };

  /** The draft as a RISKMON_RULES config, or an error message naming what is wrong. */
  const draftConfig = (): Config => {
    const c: Config = { cancel_rate_spike: { ...startConfig.cancel_rate_spike }, volume_drop: { ...startConfig.volume_drop }, volume_spike: { ...startConfig.volume_spike }, lifecycle: {} };
    for (const k of ['holidays', 'sameWeekdayWeeks', 'minSameWeekdays']) if (startConfig[k] !== undefined) c[k] = startConfig[k];
    form.querySelectorAll<HTMLInputElement>('input[data-field]').forEach((i) => {
      const target = i.dataset.section ? c[i.dataset.section] : c;
      if (i.type === 'checkbox') target[i.dataset.field!] = i.checked;
      else if (i.value !== '') target[i.dataset.field!] = Number(i.value);
    });
    const text = (form.elements.namedItem('overrides') as HTMLTextAreaElement).value.trim();
    try { c.overrides = text ? JSON.parse(text) : {}; } catch (e) { throw new Error(`overrides is not valid JSON: ${(e as Error).message}`); }
    const composed = (form.elements.namedItem('composed') as HTMLTextAreaElement).value.trim();
    try { c.composed = composed ? JSON.parse(composed) : []; } catch (e) { throw new Error(`composed rules are not valid JSON: ${(e as Error).message}`); }
    return c;
  };
  const period = () => ({
    from: fromLocalInput((form.elements.namedItem('from') as HTMLInputElement).value),
    to: fromLocalInput((form.elements.namedItem('to') as HTMLInputElement).value),
  });
  const problem = (e: unknown) => (e instanceof HttpError ? `${e.body.field ? `${e.body.field}: ` : ''}${e.body.message ?? e.message}` : (e as Error).message);

  const loadRules = async () => {
    rules = await api<Rules>('/api/rules');
    const r = rules;
    if (!(form.elements.namedItem('from') as HTMLInputElement).value) {
      const to = r.backtestPeriod.to;
      const from = new Date(Math.max(Date.parse(r.backtestPeriod.from), Date.parse(to) - 86_400_000)).toISOString();
      (form.elements.namedItem('from') as HTMLInputElement).value = localInput(from);
      (form.elements.namedItem('to') as HTMLInputElement).value = localInput(to);
      if (r.active) fill(r.active.version, r.active.config);
    }
    $('#period-note', el).textContent = `${session.tz}; a backtest can cover ${dateTime(r.backtestPeriod.from)} – ${dateTime(r.backtestPeriod.to)}${r.backtestPeriod.limitedBy === 'minute tier' ? ' (older minutes have left Redis)' : ''}`;
    render($('#versions', el), html`<table class="table versions"><thead><tr><th>Version</th><th>Note</th><th>Created</th><th>Activated</th><th></th></tr></thead><tbody>
      ${r.versions.map((v) => html`<tr data-version="${v.version}" class="${v.active ? 'active' : ''}">
        <td class="mid">${v.version} ${v.active ? html`<span class="badge">active</span>` : ''} ${r.shadow?.version === v.version ? html`<span class="badge shadow">shadow</span>` : ''}</td>
        <td>${v.note}</td><td class="small">${dateTime(v.createdAt)} · ${v.createdBy}</td>
        <td class="small">${v.activatedAt ? html`${dateTime(v.activatedAt)} · ${v.activatedBy}` : html`<span class="muted">draft</span>`}</td>
        <td class="actions"><button class="link" data-act="edit">edit as draft</button>
          ${canTriage() ? html`<button class="link" data-act="backtest">backtest</button>` : ''}
          ${isAdmin() && !v.active ? html`<button class="link" data-act="activate">activate</button>` : ''}
          ${isAdmin() && !v.active && r.shadow?.version !== v.version ? html`<button class="link" data-act="shadow">run as shadow</button>` : ''}
          ${isAdmin() && r.shadow?.version === v.version ? html`<button class="link" data-act="unshadow">stop shadow</button>` : ''}</td></tr>`)}
      </tbody></table>`);
  };

  const showBacktest = (b: Backtest) => {
    $('#bt-title', el).textContent = `#${b.id} · ${b.version ?? `unsaved (${b.ruleVersion})`} · ${dateTime(b.from)} – ${dateTime(b.to)} · by ${b.createdBy}`;
    const box = $('#backtest', el);
    if (b.status !== 'done') {
      render(box, html`<div class="bt-status" data-status="${b.status}">${b.status}${b.error ? html`: <span class="error">${b.error}</span>` : ''}
        <progress max="1" value="${b.progress}"></progress> ${pct(b.progress, 0)}
        ${b.status === 'queued' || b.status === 'running' ? html`<button class="link" id="bt-cancel">cancel</button>` : ''}</div>`);
      return;
    }
    const max = Math.max(1, ...b.perDay.flatMap((d) => [d.backtest, d.live]));
    const rulesOf = Object.keys(b.summary ?? {});
    const q = (x: Quality | undefined) => (x?.precision === null || x === undefined ? html`<span class="muted" title="no confirmed or false-positive dispositions">—</span>` : pct(x.precision, 0));
    render(box, html`<div class="bt-status" data-status="done">done · ${int(b.alerts.length)} alerts ${b.vsLive?.exact ? html`<span class="badge ok">identical to live</span>` : ''}
        ${isAdmin() && b.version ? html`<button id="bt-activate" data-version="${b.version}">Activate ${b.version}</button>` : ''}</div>
      <table class="table bt-summary"><thead><tr><th>Rule</th><th class="num">Fired (candidate)</th><th class="num">Fired (live)</th><th class="num">Merchants (candidate / live)</th><th class="num">Precision (candidate)</th><th class="num">Precision (live)</th></tr></thead><tbody>
        ${rulesOf.map((r) => html`<tr data-rule="${r}"><td>${RULE_LABEL[r] ?? r}</td><td class="num cand">${int(b.summary![r].fired)}</td><td class="num live">${int(b.summary![r].live.fired)}</td>
          <td class="num">${int(b.summary![r].merchants)} / ${int(b.summary![r].live.merchants)}</td><td class="num">${q(b.quality?.[r])}</td><td class="num">${q(b.liveQuality?.[r])}</td></tr>`)}
      </tbody></table>
      ${b.money ? html`<p class="bt-money small" title="a hold on each merchant at its first alert, followed ${b.money.horizonDays} days or to the period's end">Money: ₩ owed at firing ${krw(b.money.receivableAtFiring)} on ${int(b.money.merchants)} merchants · peak ${krw(b.money.peakReceivable)} · holds at firing would have kept ${krw(b.money.withheld)} and covered ${krw(b.money.covered)} · held on false positives ${krw(b.money.falsePositive.withheld)} (${int(b.money.falsePositive.merchants)} merchants)</p>` : ''}
      <h3>Alerts per day</h3>
      <table class="table per-day"><tbody>${b.perDay.map((d) => html`<tr><td class="small">${d.day}</td>
        <td class="bars"><meter class="cand" min="0" max="${max}" value="${d.backtest}" title="candidate ${d.backtest}"></meter><br><meter class="live" min="0" max="${max}" value="${d.live}" title="live ${d.live}"></meter></td>
        <td class="num small">${int(d.backtest)} / ${int(d.live)}</td></tr>`)}</tbody></table>
      <p class="small muted">blue: candidate · grey: live</p>
      <div class="only">
        <div><h3>Only the candidate flags (${int(b.vsLive?.onlyBacktest.length ?? 0)})</h3><ul id="only-backtest">${(b.vsLive?.onlyBacktest ?? []).slice(0, 50).map((a) => html`<li><a href="#/merchants/${encodeURIComponent(a.merchantId)}">${a.merchantId}</a> ${RULE_LABEL[a.rule] ?? a.rule} · ${dateTime(a.firedAt)}</li>`)}</ul></div>
        <div><h3>Only live flags (${int(b.vsLive?.onlyLive.length ?? 0)})</h3><ul id="only-live">${(b.vsLive?.onlyLive ?? []).slice(0, 50).map((a) => html`<li><a href="#/merchants/${encodeURIComponent(a.merchantId)}">${a.merchantId}</a> ${RULE_LABEL[a.rule] ?? a.rule} · ${dateTime(a.firedAt)}${a.disposition ? html` · <span class="disp">${a.disposition.replace('_', ' ')}</span>` : ''}</li>`)}</ul></div>
      </div>`);
  };

  const queued = (id: string) => `backtest #${id} queued`;
  const watch = (id: string) => {
    clearTimeout(polling);
    const tick = async () => {
      if (stopped) return;
      try {
        const b = await api<Backtest>(`/api/backtests/${id}`);
        showBacktest(b);
        if (b.status === 'queued' || b.status === 'running') polling = window.setTimeout(tick, 1000);
        else if ($('#draft-msg', el).textContent === queued(id)) msg(''); // the status line says the rest
      } catch (e) { render($('#backtest', el), html`<span class="error">${problem(e)}</span>`); }
    };
    void tick();
  };
  const start = async (body: Config) => {
    try {
      const { id } = await api<{ id: string }>('/api/backtests', { method: 'POST', body: { ...body, ...period() } });
      msg(queued(id));
      watch(id);
    } catch (e) { msg(problem(e), true); }
  };

  $('#bt-draft', el).addEventListener('click', () => {
    try { void start({ config: draftConfig() }); } catch (e) { msg((e as Error).message, true); }
  });
  $('#save-draft', el).addEventListener('click', async () => {
    try {
      const note = (form.elements.namedItem('note') as HTMLInputElement).value;
      const { version } = await api<{ version: string }>('/api/rules', { method: 'POST', body: { config: draftConfig(), note } });
      msg(`saved as ${version}`);
      await loadRules();
    } catch (e) { msg(problem(e), true); }
  });
  el.addEventListener('click', async (e) => {
    const t = e.target as HTMLElement;
    if (t.id === 'bt-cancel') {
      const id = $('#bt-title', el).textContent?.match(/^#(\d+)/)?.[1];
      if (id) { await api(`/api/backtests/${id}/cancel`, { method: 'POST', body: {} }).catch((x) => msg(problem(x), true)); watch(id); }
      return;
    }
    if (t.id === 'bt-activate') {
      const v = t.dataset.version!;
      if (!confirm(`Activate ${v}? The evaluator uses it from the next closed minute.`)) return;
      await api(`/api/rules/${encodeURIComponent(v)}/activate`, { method: 'POST', body: {} }).then(() => msg(`${v} is active from the next closed minute`)).catch((x) => msg(problem(x), true));
      await loadRules();
      return;
    }
    const act = t.dataset.act;
    const v = t.closest<HTMLElement>('tr[data-version]')?.dataset.version;
    if (!act || !v) return;
    try {
      if (act === 'edit') { const r = await api<{ config: Config }>(`/api/rules/${encodeURIComponent(v)}`); fill(v, r.config); form.scrollIntoView(); }
      if (act === 'backtest') await start({ version: v });
      if (act === 'activate') {
        if (!confirm(`Activate ${v}? The evaluator uses it from the next closed minute.`)) return;
        await api(`/api/rules/${encodeURIComponent(v)}/activate`, { method: 'POST', body: {} });
        msg(`${v} is active from the next closed minute`);
      }
      if (act === 'shadow') { await api(`/api/rules/${encodeURIComponent(v)}/shadow`, { method: 'POST', body: {} }); msg(`${v} runs as the shadow version`); }
      if (act === 'unshadow') { await api('/api/rules/shadow', { method: 'DELETE' }); msg('shadow stopped'); }
      await loadRules();
    } catch (x) { msg(problem(x), true); }
  });

  void loadRules().catch((e) => render($('#versions', el), html`<span class="error">Could not load the rule versions: ${problem(e)}</span>`));
  void api<{ items: Backtest[] }>('/api/backtests').then((r) => { if (r.items[0]) watch(r.items[0].id); }).catch(() => {});
  return () => { stopped = true; clearTimeout(polling); };
}

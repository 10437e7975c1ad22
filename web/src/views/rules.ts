/**
 * Rule quality: per rule and rule version, how many alerts fired in the period and how analysts closed them, and
 * the precision that follows (confirmed ÷ (confirmed + false positives); benign counts in neither).
 */
import { api } from '../api.ts';
import { $, html, int, pct, render, RULE_LABEL } from '../format.ts';
import { live } from '../live.ts';

interface Quality { rule: string; ruleVersion: string; fired: number; dispositioned: number; confirmed: number; falsePositive: number; benign: number; precision: number | null }

const PERIODS = [{ id: '1', label: '24 hours' }, { id: '7', label: '7 days' }, { id: '30', label: '30 days' }, { id: '90', label: '90 days' }];

export function rulesPage(main: HTMLElement): () => void {
  let days = sessionStorage.getItem('riskmon.qualityDays') ?? '30';
  render(main, html`
    <section class="card quality-card">
      <h2>Rule precision <span class="tabs filters" id="periods" role="group" aria-label="period">${PERIODS.map((p) => html`<button data-days="${p.id}" aria-pressed="false">${p.label}</button>`)}</span></h2>
      <p class="muted small">From the dispositions analysts gave the alerts that fired in the period. Precision = confirmed ÷ (confirmed + false positive);
        benign alerts (real, but no risk) count in neither. Alerts still open count only in "fired".</p>
      <table class="table quality"><thead><tr><th>Rule</th><th>Version</th><th class="num">Fired</th><th class="num">Closed</th><th class="num">Confirmed</th><th class="num">False positive</th><th class="num">Benign</th><th class="num">Precision</th><th></th></tr></thead>
      <tbody id="quality"><tr><td colspan="9" class="muted">Loading…</td></tr></tbody></table>
    </section>`);

  const load = async () => {
    main.querySelectorAll<HTMLButtonElement>('#periods button').forEach((b) => {
      b.classList.toggle('on', b.dataset.days === days);
      b.setAttribute('aria-pressed', String(b.dataset.days === days));
    });
    const from = new Date(Date.now() - Number(days) * 86_400_000).toISOString();
    const r = await api<{ items: Quality[] }>(`/api/rules/quality?from=${encodeURIComponent(from)}`);
    render($('#quality', main), r.items.length ? html`${r.items.map((q) => html`<tr data-rule="${q.rule}" data-version="${q.ruleVersion}">
        <td>${RULE_LABEL[q.rule] ?? q.rule}</td>
        <td class="mid">${q.ruleVersion}</td>
        <td class="num">${int(q.fired)}</td>
        <td class="num">${int(q.dispositioned)} <span class="muted small">${q.fired ? pct(q.dispositioned / q.fired, 0) : ''}</span></td>
        <td class="num">${int(q.confirmed)}</td>
        <td class="num">${int(q.falsePositive)}</td>
        <td class="num">${int(q.benign)}</td>
        <td class="num precision">${q.precision === null ? html`<span class="muted" title="no confirmed or false-positive dispositions yet">—</span>` : pct(q.precision, 0)}</td>
        <td>${q.precision === null ? '' : html`<meter min="0" max="1" low="0.5" high="0.8" optimum="1" value="${q.precision}" title="${pct(q.precision, 1)}"></meter>`}</td>
      </tr>`)}` : html`<tr><td colspan="9" class="muted">No alerts fired in this period.</td></tr>`);
  };
  const loadOrSay = () => load().catch(() => render($('#quality', main), html`<tr><td colspan="9" class="error">Could not load rule quality.</td></tr>`));
  void loadOrSay();
  $('#periods', main).addEventListener('click', (e) => {
    const b = (e.target as HTMLElement).closest('button');
    if (!b?.dataset.days) return;
    days = b.dataset.days;
    sessionStorage.setItem('riskmon.qualityDays', days);
    void loadOrSay();
  });
  // A disposition anywhere changes the figures.
  let timer = 0;
  const onChange = () => { clearTimeout(timer); timer = window.setTimeout(() => void loadOrSay(), 300); };
  live.onUpdate.add(onChange);
  live.onAlert.add(onChange);
  return () => { clearTimeout(timer); live.onUpdate.delete(onChange); live.onAlert.delete(onChange); };
}

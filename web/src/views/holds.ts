/**
 * The payout hold panel of the alert page and the merchant page: the merchant's active hold (or none), the hold
 * button with its reason for analysts, release, and where each action is on its way to the settlement system —
 * pending delivery, delivered, failed (dead-lettered, with the endpoint's answer). While an action is pending the
 * panel re-reads the hold every 2 s, so the analyst sees it reach the settlement system.
 */
import { api, canTriage, HttpError, session } from '../api.ts';
import { $, dateTime, html, render, type Raw } from '../format.ts';

const REASON_MAX = 1000;
const POLL_MS = 2000;

export interface Delivery {
  id: string; type: string; status: 'pending' | 'delivered' | 'failed' | 'discarded'; attempts: number; lastStatus: number | null;
  reason: string | null; nextAttemptAt: string | null; deliveredAt: string | null; waitingFor: string | null;
}
export interface Hold {
  id: string; merchantId: string; state: 'active' | 'released'; reason: string; alertId: string | null; createdBy: string; createdAt: string;
  releasedBy: string | null; releasedAt: string | null; releaseReason: string | null; delivery: Delivery['status']; actions: Delivery[];
}

const DELIVERY_LABEL: Record<Delivery['status'], string> = { pending: 'pending delivery', delivered: 'delivered', failed: 'failed', discarded: 'discarded' };

export const deliveryBadge = (d: Delivery['status']): Raw => html`<span class="badge dl-${d}" data-delivery="${d}">${DELIVERY_LABEL[d]}</span>`;

function actionLine(a: Delivery): Raw {
  const what = a.type === 'payout.hold' ? 'hold' : a.type === 'payout.release' ? 'release' : a.type;
  const detail = a.status === 'delivered' ? html`<span class="muted">at ${dateTime(a.deliveredAt!)}</span>`
    : a.status === 'failed' ? html`<span class="error">${a.reason ?? ''}</span> <span class="muted">(an admin retries it: docs/operations.md)</span>`
    : a.waitingFor ? html`<span class="muted">waiting for an earlier action of this merchant</span>`
    : a.attempts ? html`<span class="muted">${a.attempts} attempt${a.attempts === 1 ? '' : 's'}, last: ${a.reason ?? '—'}${a.nextAttemptAt ? html`; next ${dateTime(a.nextAttemptAt)}` : ''}</span>` : '';
  return html`<li>${what} ${deliveryBadge(a.status)} ${detail}</li>`;
}

/** Draws the panel into `el` for `merchantId` (from an alert: `alertId`). Returns its disposer. */
export function holdPanel(el: HTMLElement, merchantId: string, o: { alertId?: string } = {}): () => void {
  let disposed = false;
  let timer = 0;
  let message = '';
  let draft = '';

  async function load(): Promise<void> {
    clearTimeout(timer);
    let holds: Hold[];
    try {
      holds = (await api<{ items: Hold[] }>(`/api/holds?merchantId=${encodeURIComponent(merchantId)}&limit=5`)).items;
    } catch (err) {
      if (!disposed) render(el, html`<h2>Payout hold</h2><p class="error small">Holds could not be read (${(err as Error).message}).</p>`);
      return;
    }
    if (disposed) return;
    draw(holds);
    if (holds.some((h) => h.actions.some((a) => a.status === 'pending'))) timer = window.setTimeout(() => void load(), POLL_MS);
  }

  function draw(holds: Hold[]): void {
    const focused = el.contains(document.activeElement) ? document.activeElement?.id : undefined;
    const active = holds.find((h) => h.state === 'active') ?? null;
    const past = holds.filter((h) => h !== active);
    const failed = holds.flatMap((h) => h.actions.filter((a) => a.status === 'failed'));
    const may = canTriage();
    render(el, html`
      <h2>Payout hold ${active ? deliveryBadge(active.delivery) : ''}</h2>
      <div id="hold-state" data-hold="${active?.id ?? ''}" data-state="${active ? 'active' : 'none'}">
        ${active
          ? html`<p><b>Payouts held</b> since ${dateTime(active.createdAt)} by ${active.createdBy}${active.alertId ? html` from alert <a href="#/alerts/${active.alertId}">#${active.alertId}</a>` : ''} — <q>${active.reason}</q></p>
                 <ul class="actions small">${active.actions.map(actionLine)}</ul>`
          : html`<p class="muted">Payouts are not held.</p>`}
      </div>
      ${failed.length ? html`<p class="error small" id="hold-failed">${failed.length} action${failed.length === 1 ? '' : 's'} did not reach the settlement system (dead-lettered): see below.</p>` : ''}
      ${may
        ? html`<form id="hold-form" class="inline-form" autocomplete="off">
            <label for="hold-reason">${active ? 'Release because' : 'Hold payouts because'}</label>
            <input id="hold-reason" maxlength="${REASON_MAX}" size="34" required placeholder="${active ? 'e.g. merchant confirmed shipping' : 'e.g. cancel surge, calling the merchant'}" value="${draft}">
            <button type="submit" id="${active ? 'release-btn' : 'hold-btn'}" class="${active ? '' : 'danger'}">${active ? 'Release hold' : 'Hold payouts'}</button>
          </form>`
        : html`<p class="muted small">Your key is a ${session.role}: an analyst or admin key holds and releases payouts.</p>`}
      <p class="error small" id="hold-error" role="alert">${message}</p>
      ${past.length ? html`<details class="small"><summary>Earlier holds (${past.length})</summary><ul class="actions">${past.map((h) => html`
        <li>${dateTime(h.createdAt)} → ${h.releasedAt ? dateTime(h.releasedAt) : '—'} by ${h.createdBy} — <q>${h.reason}</q>${h.releaseReason ? html`; released by ${h.releasedBy}: <q>${h.releaseReason}</q>` : ''}
          <ul>${h.actions.map(actionLine)}</ul></li>`)}</ul></details>` : ''}`);
    if (focused) (el.querySelector(`#${focused}`) as HTMLElement | null)?.focus();
    const input = el.querySelector('#hold-reason') as HTMLInputElement | null;
    input?.addEventListener('input', () => { draft = input.value; });
    el.querySelector('#hold-form')?.addEventListener('submit', (e) => {
      e.preventDefault();
      const reason = input!.value.trim();
      if (!reason) return;
      void act(active
        ? api<Hold>(`/api/holds/${active.id}/release`, { method: 'POST', body: { reason } })
        : api<Hold>(`/api/merchants/${encodeURIComponent(merchantId)}/holds`, { method: 'POST', body: { reason, ...(o.alertId ? { alertId: o.alertId } : {}) } }));
    });
  }

  async function act(p: Promise<Hold>): Promise<void> {
    try {
      message = '';
      await p;
      draft = '';
    } catch (err) {
      message = err instanceof HttpError ? `${err.body.field ? `${err.body.field}: ` : ''}${err.message}` : 'the request failed';
    }
    await load();
    if (message) $('#hold-error', el).textContent = message;
  }

  void load();
  return () => { disposed = true; clearTimeout(timer); };
}

/** Formatting in the server's day zone, and small DOM helpers. */
import { session, type Alert } from './api.ts';

const fmtCache = new Map<string, Intl.DateTimeFormat>();
function fmt(opts: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  const k = JSON.stringify(opts) + session.tz;
  let f = fmtCache.get(k);
  if (!f) { f = new Intl.DateTimeFormat('en-GB', { timeZone: session.tz, hourCycle: 'h23', ...opts }); fmtCache.set(k, f); }
  return f;
}

export const time = (ms: number | string) => fmt({ hour: '2-digit', minute: '2-digit' }).format(new Date(ms));
export const dateTime = (ms: number | string) => fmt({ month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit' }).format(new Date(ms));
export const day = (ms: number | string) => fmt({ month: 'short', day: '2-digit' }).format(new Date(ms));

/** KRW in compact international units (₩12.3M, ₩1.02B): readable without CJK fonts, dense in tables. */
export function krw(n: number | string | null | undefined): string {
  if (n === null || n === undefined || n === '') return '—';
  const v = Number(n);
  const a = Math.abs(v);
  if (a >= 1e9) return `₩${(v / 1e9).toFixed(a >= 1e11 ? 0 : 2)}B`;
  if (a >= 1e6) return `₩${(v / 1e6).toFixed(a >= 1e8 ? 0 : 1)}M`;
  if (a >= 1e4) return `₩${(v / 1e3).toFixed(0)}K`;
  return `₩${Math.round(v).toLocaleString('en-US')}`;
}
/** KRW exactly, with thousands separators (₩41,000,000): amounts the API serves as decimal strings, never rounded. */
export function krwExact(n: number | string | bigint | null | undefined): string {
  if (n === null || n === undefined || n === '') return '—';
  const s = typeof n === 'string' && /^-?\d+$/.test(n) ? n : String(typeof n === 'bigint' ? n : Math.round(Number(n)));
  const neg = s.startsWith('-');
  return `${neg ? '−' : ''}₩${(neg ? s.slice(1) : s).replace(/\B(?=(\d{3})+(?!\d))/g, ',')}`;
}
export const pct = (r: number | null | undefined, digits = 1) => (r === null || r === undefined || !Number.isFinite(r) ? '—' : `${(r * 100).toFixed(digits)}%`);
export const int = (n: number) => n.toLocaleString('en-US');
export const ago = (ms: number | null) => ms === null ? '—' : Math.abs(ms) < 90_000 ? `${Math.round(ms / 1000)} s` : Math.abs(ms) < 5_400_000 ? `${Math.round(ms / 60_000)} min` : `${(ms / 3_600_000).toFixed(1)} h`;
export const bytes = (b: number | null) => b === null ? '—' : b < 1024 ? `${b} B` : b < 1 << 20 ? `${(b / 1024).toFixed(0)} KiB` : `${(b / (1 << 20)).toFixed(1)} MiB`;

export const RULE_LABEL: Record<string, string> = { cancel_rate_spike: 'Cancel-rate spike', volume_drop: 'Volume drop', volume_spike: 'Volume spike', receivable: 'Receivable' };
export const DISPOSITION_LABEL: Record<string, string> = { confirmed: 'confirmed', false_positive: 'false positive', benign: 'benign' };

/** One line that says why an alert fired, from its evidence. */
export function evidenceLine(a: Pick<Alert, 'rule' | 'evidence'>): string {
  const e = a.evidence ?? {};
  if (a.rule === 'cancel_rate_spike' && e.window && e.baseline) {
    return `${pct(e.window.rate)} cancels over ${int(e.window.approvals ?? 0)} approvals vs ${pct(e.baseline.rate, 2)} baseline`;
  }
  if (a.rule === 'volume_drop' && e.window && e.baseline) {
    const r = e.todayVsBaseline;
    const days = Array.isArray(e.baseline.days) && e.baseline.kind === 'same_weekday' ? ` on ${e.baseline.days.length} same weekdays` : '';
    return `today ${krw(e.window.approvedAmount)} vs ${krw(e.baseline.sameTimeAverage)} usual by now${days}${typeof r === 'number' ? ` (${pct(r, 0)})` : ''}`;
  }
  if (a.rule === 'volume_spike' && e.window && e.baseline) {
    const r = e.windowVsBaseline;
    return `last hour ${krw(e.window.approvedAmount)} vs ${krw(e.baseline.sameWindowAverage)} usual${typeof r === 'number' ? ` (×${r.toFixed(1)})` : ''}`;
  }
  if (a.rule === 'receivable' && e.exposure) {
    return `owes ${krw(e.exposure.receivable)}: canceled ${krw(e.exposure.canceledSinceSettled)} vs approved ${krw(e.exposure.approvedSinceSettled)} since the last payout (fires at ${krw(e.minReceivable)})`;
  }
  return '';
}

/** Tagged template: interpolations are escaped unless they are themselves `html` results; arrays are joined. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Raw {
  let out = strings[0];
  values.forEach((v, i) => { out += (Array.isArray(v) ? v.map(asHtml).join('') : asHtml(v)) + strings[i + 1]; });
  return new Raw(out);
}
export class Raw { constructor(readonly s: string) {} toString() { return this.s; } }
export const raw = (s: string) => new Raw(s);
function asHtml(v: unknown): string {
  if (v instanceof Raw) return v.s;
  if (v === null || v === undefined || v === false) return '';
  return String(v).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function render(el: Element, content: Raw): void { el.innerHTML = content.s; }

export function $(sel: string, root: ParentNode = document): HTMLElement {
  const el = root.querySelector(sel);
  if (!el) throw new Error(`no element ${sel}`);
  return el as HTMLElement;
}

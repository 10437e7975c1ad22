/**
 * Slack messages (Block Kit, https://api.slack.com/block-kit) for one transition or a digest of several.
 * Pure: the sender passes the rows it claimed, with the alert's triage state as it is when the message is sent.
 *
 * A re-notification of an acknowledged alert is marked, not suppressed: it still goes out (the alert is still
 * firing, and the channel may be the only place someone else sees it), but its title says "acknowledged by X" and
 * a line names who acknowledged it when, and the assignee, so nobody starts working on it twice.
 */
import type { Alert, AlertTransition } from '../../lib/alert-message.ts';

/**
 * One outbox row as a message renders it: the transition (its kind, minute and evidence) and its alert, as the one
 * alert JSON (lib/alert-message.ts) has it when the message is sent — ack and assignee included.
 */
export type NotificationView = Pick<Alert, 'rule' | 'merchantId'> & Partial<Pick<Alert, 'ack' | 'assignee' | 'exposureAtFiring' | 'receivableNow'>> & {
  /** The outbox row. */
  id: string;
  kind: AlertTransition;
  alertId: Alert['id'];
  minute: string;
  /** The transition's evidence. */
  evidence: Alert['evidence'];
};

export interface SlackPayload { text: string; blocks: unknown[] }

const TITLE: Record<NotificationView['kind'], string> = { fired: ':rotating_light: FIRING', renotified: ':bell: STILL FIRING', resolved: ':white_check_mark: RESOLVED' };
const RULE: Record<string, string> = { cancel_rate_spike: 'cancel-rate spike', volume_drop: 'volume drop', volume_spike: 'volume spike', receivable: 'receivable' };

const pct = (x: unknown) => (typeof x === 'number' ? `${(x * 100).toFixed(1)}%` : 'n/a');
const krw = (x: unknown) => (x === undefined || x === null ? 'n/a' : `${BigInt(String(x)).toLocaleString('en-US')} KRW`);

/** One line of numbers that says why. */
export function summary(n: NotificationView): string {
  const e = n.evidence;
  if (n.rule === 'cancel_rate_spike') {
    return `cancel rate ${pct(e.window?.rate)} (${e.window?.cancels}/${e.window?.approvals} in the window) vs baseline ${pct(e.baseline?.rate)}`
      + ` (${e.baseline?.cancels}/${e.baseline?.approvals}); fires at ×${e.multiplier} = ${pct(e.threshold)}`;
  }
  if (n.rule === 'volume_drop') {
    return `approved today ${krw(e.window?.approvedAmount)} vs same-time baseline ${krw(e.baseline?.sameTimeAverage)}${e.baseline?.kind === 'same_weekday' ? ' (same weekdays)' : ''}`
      + ` (${typeof e.todayVsBaseline === 'number' ? pct(e.todayVsBaseline) : 'n/a'}); fires at ≤ ${pct(e.ratio)}`;
  }
  if (n.rule === 'volume_spike') {
    return `approved in the window ${krw(e.window?.approvedAmount)} vs ${krw(e.baseline?.sameWindowAverage || undefined)} usual`
      + ` (${typeof e.windowVsBaseline === 'number' ? `×${e.windowVsBaseline.toFixed(1)}` : 'n/a'}); fires at ×${e.multiplier}`;
  }
  if (n.rule === 'receivable') {
    return `receivable ${krw(e.exposure?.receivable)} (canceled ${krw(e.exposure?.canceledSinceSettled)} vs approved ${krw(e.exposure?.approvedSinceSettled)} since ${e.exposure?.settledThrough ?? 'the first payment'}); fires at ≥ ${krw(e.minReceivable)}`;
  }
  if (n.rule.startsWith('composed:')) {
    const num = (x: unknown) => (typeof x === 'number' ? (Math.abs(x) < 10 ? x.toPrecision(3) : Math.round(x).toLocaleString('en-US')) : 'n/a');
    return `${e.metric} ${num(e.window?.value)} in the window vs ${num(e.baseline?.value)} (${e.baseline?.kind}); fires at ${e.compare === 'fraction' ? '≤' : '≥'} ${e.k} × baseline`;
  }
  return JSON.stringify(e);
}

export function merchantLink(publicUrl: string, merchantId: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/#/merchants/${encodeURIComponent(merchantId)}`;
}

/** The alert's page on the dashboard (evidence, charts, notes, triage). */
export function alertLink(publicUrl: string, alertId: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/#/alerts/${encodeURIComponent(alertId)}`;
}

/**
 * The money at risk: "₩ at risk now 41,000,000 KRW (at firing 30,500,000 KRW)" — the receivable the company would
 * have to claw back from the merchant (docs/analysts.md); '' when the merchant owes nothing and did not at firing.
 */
export function moneyLine(n: NotificationView): string {
  if (n.receivableNow === undefined && !n.exposureAtFiring) return '';
  const now = n.receivableNow ?? '0';
  const fired = n.exposureAtFiring?.receivable;
  if (now === '0' && (fired ?? '0') === '0') return ''; // owes nothing, and did not when it fired
  return `₩ at risk now ${krw(now)}${fired !== undefined && n.kind !== 'resolved' ? ` (at firing ${krw(fired)})` : ''}`;
}

/** Only a re-notification is marked: a fire has no acknowledgement yet, a resolve ends the alert. */
const acked = (n: NotificationView) => (n.kind === 'renotified' && n.ack ? n.ack : null);

/** "acknowledged by X at T, assigned to Y" for an acknowledged re-notification; '' otherwise. */
export function ackLine(n: NotificationView): string {
  const a = acked(n);
  if (!a) return '';
  return `acknowledged by ${plain(a.by)} at ${a.at}${n.assignee ? `, assigned to ${plain(n.assignee)}` : ''}`;
}

/**
 * Slack reads `&`, `<` and `>` in text as markup (`<!channel>`, `<https://…|label>`, `<@U123>`): everything put
 * into a text field — merchant ids and evidence from the source, rule versions — is escaped as Slack asks
 * (https://api.slack.com/reference/surfaces/formatting#escaping), so it is shown, never acted on.
 */
export const esc = (s: unknown) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Names come from API keys and analysts: keep Slack from reading them as mentions, links or markup. */
const plain = (s: string) => s.replace(/[<>&*_~`|]/g, (c) => ({ '<': '‹', '>': '›', '&': '+' } as Record<string, string>)[c] ?? ' ').slice(0, 100);

export function alertMessage(n: NotificationView, publicUrl: string): SlackPayload {
  const a = acked(n);
  const head = `${TITLE[n.kind]}${a ? ` (acknowledged by ${plain(a.by)})` : ''} ${RULE[n.rule] ?? n.rule} — merchant ${n.merchantId}`;
  const link = merchantLink(publicUrl, n.merchantId);
  const money = moneyLine(n);
  return {
    text: esc(`${head}: ${summary(n)}${money ? ` — ${money}` : ''}${a ? ` — ${ackLine(n)}` : ''}`),
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: head.replace(/:[a-z_]+: /, '').slice(0, 150) } },
      {
        type: 'section',
        fields: [
          { type: 'mrkdwn', text: `*Merchant*\n<${esc(link)}|${esc(n.merchantId)}>` },
          { type: 'mrkdwn', text: `*Rule*\n${esc(n.rule)}` },
          { type: 'mrkdwn', text: `*Minute*\n${esc(n.minute)}` },
          { type: 'mrkdwn', text: `*Alert*\n#${esc(n.alertId)} (${n.kind})` },
        ],
      },
      { type: 'section', text: { type: 'mrkdwn', text: esc(summary(n)) } },
      ...(money ? [{ type: 'section', text: { type: 'mrkdwn', text: `*${esc(money)}*` } }] : []),
      ...(a ? [{ type: 'context', elements: [{ type: 'mrkdwn', text: `:eyes: ${esc(ackLine(n))}` }] }] : []),
      {
        type: 'context',
        elements: [{ type: 'mrkdwn', text: esc(`rule version ${n.evidence.ruleVersion ?? 'n/a'} · window ${n.evidence.window?.from ?? ''} – ${n.evidence.window?.to ?? ''}`) }],
      },
      {
        type: 'actions',
        elements: [
          { type: 'button', text: { type: 'plain_text', text: 'Open alert' }, url: alertLink(publicUrl, n.alertId) },
          { type: 'button', text: { type: 'plain_text', text: 'Merchant' }, url: link },
        ],
      },
    ],
  };
}

/** Several pending transitions at once (a burst) become one message listing them. */
export function digestMessage(ns: NotificationView[], publicUrl: string): SlackPayload {
  const lines = ns.map((n) => `• ${TITLE[n.kind]} *${esc(RULE[n.rule] ?? n.rule)}* — <${esc(merchantLink(publicUrl, n.merchantId))}|merchant ${esc(n.merchantId)}>: ${esc(summary(n))}${moneyLine(n) ? ` — ${esc(moneyLine(n))}` : ''}${acked(n) ? ` (${esc(ackLine(n))})` : ''}`);
  // A section's text is limited to 3000 characters: split the list over several sections.
  const sections: unknown[] = [];
  let cur = '';
  for (const l of lines) {
    if (cur && cur.length + l.length + 1 > 2900) { sections.push({ type: 'section', text: { type: 'mrkdwn', text: cur } }); cur = ''; }
    cur = cur ? `${cur}\n${l}` : l.slice(0, 2900);
  }
  if (cur) sections.push({ type: 'section', text: { type: 'mrkdwn', text: cur } });
  const head = `${ns.length} alert transitions`;
  return {
    text: esc(`${head}: ${ns.map((n) => `${n.kind} ${n.rule} merchant ${n.merchantId}`).join('; ')}`).slice(0, 3000),
    blocks: [{ type: 'header', text: { type: 'plain_text', text: head } }, ...sections.slice(0, 45)],
  };
}

/**
 * Slack messages (Block Kit, https://api.slack.com/block-kit) for one transition or a digest of several.
 * Pure: the sender passes the rows it claimed.
 */
export interface NotificationView {
  id: string;
  kind: 'fired' | 'renotified' | 'resolved';
  rule: string;
  merchantId: string;
  alertId: string;
  minute: string;
  evidence: Record<string, any>;
}

export interface SlackPayload { text: string; blocks: unknown[] }

const TITLE: Record<NotificationView['kind'], string> = { fired: ':rotating_light: FIRING', renotified: ':bell: STILL FIRING', resolved: ':white_check_mark: RESOLVED' };
const RULE: Record<string, string> = { cancel_rate_spike: 'cancel-rate spike', volume_drop: 'volume drop' };

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
    return `approved today ${krw(e.window?.approvedAmount)} vs same-time baseline ${krw(e.baseline?.sameTimeAverage)}`
      + ` (${typeof e.todayVsBaseline === 'number' ? pct(e.todayVsBaseline) : 'n/a'}); fires at ≤ ${pct(e.ratio)}`;
  }
  return JSON.stringify(e);
}

export function merchantLink(publicUrl: string, merchantId: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/#/merchants/${encodeURIComponent(merchantId)}`;
}

export function alertMessage(n: NotificationView, publicUrl: string): SlackPayload {
  const head = `${TITLE[n.kind]} ${RULE[n.rule] ?? n.rule} — merchant ${n.merchantId}`;
  const link = merchantLink(publicUrl, n.merchantId);
  return {
    text: `${head}: ${summary(n)}`,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: head.replace(/:[a-z_]+: /, '').slice(0, 150) } },
      {
        type: 'section',
        fields: [
          { type: 'mrkdwn', text: `*Merchant*\n<${link}|${n.merchantId}>` },
          { type: 'mrkdwn', text: `*Rule*\n${n.rule}` },
          { type: 'mrkdwn', text: `*Minute*\n${n.minute}` },
          { type: 'mrkdwn', text: `*Alert*\n#${n.alertId} (${n.kind})` },
        ],
      },
      { type: 'section', text: { type: 'mrkdwn', text: summary(n) } },
      {
        type: 'context',
        elements: [{ type: 'mrkdwn', text: `rule version ${n.evidence.ruleVersion ?? 'n/a'} · window ${n.evidence.window?.from ?? ''} – ${n.evidence.window?.to ?? ''}` }],
      },
      { type: 'actions', elements: [{ type: 'button', text: { type: 'plain_text', text: 'Open in dashboard' }, url: link }] },
    ],
  };
}

/** Several pending transitions at once (a burst) become one message listing them. */
export function digestMessage(ns: NotificationView[], publicUrl: string): SlackPayload {
  const lines = ns.map((n) => `• ${TITLE[n.kind]} *${RULE[n.rule] ?? n.rule}* — <${merchantLink(publicUrl, n.merchantId)}|merchant ${n.merchantId}>: ${summary(n)}`);
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
    text: `${head}: ${ns.map((n) => `${n.kind} ${n.rule} merchant ${n.merchantId}`).join('; ')}`.slice(0, 3000),
    blocks: [{ type: 'header', text: { type: 'plain_text', text: head } }, ...sections.slice(0, 45)],
  };
}

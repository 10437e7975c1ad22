/**
 * Prints the configuration reference (every option of every component, deduplicated) as markdown, from the
 * option specs themselves, so the README's table cannot drift: `npx tsx scripts/config-table.ts`.
 */
import type { Option } from '../lib/config.ts';
import { connectionSpec, commonSpec } from '../lib/config.ts';
import { cdcSpec } from '../cdc/index.ts';
import { aggregatorSpec } from '../aggregator/index.ts';
import { alertingSpec } from '../alerting/index.ts';
import { apiSpec } from '../api/index.ts';

const groups: [string, Record<string, Option<unknown>>][] = [
  ['connections', connectionSpec], ['shared', commonSpec], ['cdc', cdcSpec], ['aggregator', aggregatorSpec],
  ['alerting', alertingSpec], ['api', apiSpec],
];
const seen = new Set<string>();
const rows: string[] = ['| variable | used by | default | meaning |', '|---|---|---|---|'];
for (const [group, spec] of groups) {
  for (const o of Object.values(spec)) {
    if (seen.has(o.env)) continue;
    seen.add(o.env);
    const users = groups.filter(([, s]) => Object.values(s).some((x) => x.env === o.env)).map(([g]) => g)
      .filter((g) => g !== 'connections' && g !== 'shared');
    let def = o.default === undefined ? 'required' : JSON.stringify(o.default);
    if (def.length > 40) def = '(see text)';
    rows.push(`| \`${o.env}\` | ${users.join(', ') || group} | ${def === 'required' ? def : `\`${def}\``} | ${o.description} |`);
  }
}
console.log(rows.join('\n'));

/** `riskmon backfill`'s command line: each mistake named. */
import { describe, expect, it } from 'vitest';
import { DAY } from '../lib/time.ts';
import { parseBackfillArgs } from './backfill-cli.ts';

const now = Date.parse('2026-12-07T04:00:00Z');

describe('riskmon backfill arguments', () => {
  it('reads --days, --from/--to and --force', () => {
    expect(parseBackfillArgs(['--days', '8'], now)).toEqual({ fromMs: now - 8 * DAY, toMs: null, force: false });
    expect(parseBackfillArgs(['--from', '2026-12-01T00:00:00Z', '--to', '2026-12-02T00:00:00Z', '--force'], now))
      .toEqual({ fromMs: Date.parse('2026-12-01T00:00:00Z'), toMs: Date.parse('2026-12-02T00:00:00Z'), force: true });
    expect(parseBackfillArgs(['--help'], now)).toBe('help');
  });

  it('names what is wrong', () => {
    const err = (args: string[]) => (parseBackfillArgs(args, now) as { error: string }).error;
    expect(err([])).toMatch(/--days or --from is required/);
    expect(err(['--days', '401'])).toMatch(/--days "401" is outside 1\.\.400/);
    expect(err(['--days', 'x'])).toMatch(/--days "x" is not a whole number/);
    expect(err(['--days', '2', '--from', '2026-12-01T00:00:00Z'])).toMatch(/not both/);
    expect(err(['--from', 'yesterday'])).toMatch(/--from "yesterday" is not an ISO-8601 time/);
    expect(err(['--from', '2026-12-02T00:00:00Z', '--to', '2026-12-01T00:00:00Z'])).toMatch(/--to must be after --from/);
    expect(err(['--from', '2025-01-01T00:00:00Z'])).toMatch(/400 days/);
    expect(err(['--bogus'])).toMatch(/unknown flag --bogus; known flags: --days, --from, --to, --force/);
    expect(err(['--force=yes'])).toMatch(/--force takes no value/);
  });
});

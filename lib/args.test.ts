/** The commands' one argument parser: each kind of flag, and each mistake named with the expected form. */
import { describe, expect, it } from 'vitest';
import { parseFlags, required, UsageError, wantsHelp, type FlagSpec } from './args.ts';

const spec: Record<string, FlagSpec> = {
  'from-lsn': { kind: 'str', help: 'an LSN such as 0/16B3748' },
  force: { kind: 'bool', help: 'take over the lock' },
  days: { kind: 'int', min: 1, max: 400, help: 'days from 1 to 400' },
  scenario: { kind: 'list', help: 'name:merchant:start' },
};
const problem = (args: string[]) => {
  try { parseFlags('x', args, spec); } catch (err) { expect(err).toBeInstanceOf(UsageError); return (err as Error).message; }
  return null;
};

describe('parseFlags', () => {
  it('reads strings, booleans, bounded integers and repeated lists, in both spellings', () => {
    expect(parseFlags('x', ['--from-lsn', '0/1', '--force', '--days=8', '--scenario', 'a', '--scenario=b'], spec))
      .toEqual({ 'from-lsn': '0/1', force: true, days: 8, scenario: ['a', 'b'] });
    expect(parseFlags('x', [], spec)).toEqual({});
  });

  it('names what is wrong', () => {
    expect(problem(['--nope'])).toMatch(/unknown flag --nope; known flags: --from-lsn, --force, --days, --scenario/);
    expect(problem(['stray'])).toMatch(/unexpected argument "stray"/);
    expect(problem(['--from-lsn'])).toMatch(/--from-lsn needs a value \(an LSN/);
    expect(problem(['--force=1'])).toMatch(/--force takes no value/);
    expect(problem(['--days', '0'])).toMatch(/outside 1\.\.400/);
    expect(problem(['--days', '2', '--days', '3'])).toMatch(/--days given twice/);
    expect(() => required('x', {}, 'from-lsn', 'an LSN')).toThrow(/--from-lsn is required \(an LSN\)/);
  });

  it('sees a request for help anywhere', () => {
    expect(wantsHelp(['--force', '-h'])).toBe(true);
    expect(wantsHelp(['--force'])).toBe(false);
  });
});

import { describe, expect, it } from 'vitest';
import { assign, deadOnThisHost, memberId } from './members.ts';

describe('aggregator membership', () => {
  it('gives every partition to exactly one member, the same answer for every member, whatever order they see', () => {
    const members = ['h/3/c', 'h/1/a', 'g/2/b'];
    const shares = members.map((m) => assign([...members].reverse(), m, 12));
    expect(shares.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(shares.map((s) => s.length)).toEqual([4, 4, 4]);
    expect(assign(members, 'h/1/a', 12)).toEqual(assign(['h/1/a', 'h/3/c', 'g/2/b', 'h/1/a'], 'h/1/a', 12));
  });

  it('a member alone holds every partition, also before its own registration is listed', () => {
    expect(assign([], 'x/1/a', 4)).toEqual([0, 1, 2, 3]);
    expect(assign(['x/1/a'], 'x/1/a', 4)).toEqual([0, 1, 2, 3]);
    expect(assign(['x/2/b'], 'x/1/a', 4)).toEqual([0, 2]);
  });

  it('drops the members of this host whose process is gone, and an older incarnation with its own pid', () => {
    const me = 'h/10/new';
    const alive = (pid: number) => pid === 11;
    expect(deadOnThisHost(['h/10/old', 'h/11/x', 'h/12/y', 'other/12/z', me, 'h/weird'], me, alive)).toEqual(['h/10/old', 'h/12/y']);
    expect(memberId('host', 42)).toMatch(/^host\/42\/[0-9a-f]{8}$/);
  });
});

import { describe, expect, it } from 'vitest';
import { stepAlert, type AlertLife } from './lifecycle.ts';

const cfg = { resolveAfterMinutes: 5, renotifyMinutes: 60 };
const MIN = 60_000;

function run(conditions: (boolean | null)[], start = 0) {
  let cur = null as AlertLife | null;
  const out: (string | null)[] = [];
  conditions.forEach((c, i) => {
    const r = stepAlert(cur, c, start + i * MIN, cfg);
    cur = r.next;
    out.push(r.transition);
  });
  return { out, cur };
}

describe('alert lifecycle', () => {
  it('fires, then resolves after 5 consecutive clear minutes', () => {
    const { out } = run([true, false, false, false, false, false]);
    expect(out).toEqual(['fired', null, null, null, null, 'resolved']);
  });
  it('a breach in between restarts the clear count', () => {
    const { out } = run([true, false, false, false, false, true, false, false, false, false, false]);
    expect(out.filter(Boolean)).toEqual(['fired', 'resolved']);
    expect(out.indexOf('resolved')).toBe(10);
  });
  it('unknown minutes neither resolve nor count', () => {
    const { out, cur } = run([true, false, false, null, null, null, false, false]);
    expect(out.filter(Boolean)).toEqual(['fired']);
    expect(cur?.clearMinutes).toBe(4);
  });
  it('re-notifies every 60 minutes while firing', () => {
    const { out } = run(Array(121).fill(true));
    expect(out.filter(Boolean)).toEqual(['fired', 'renotified', 'renotified']);
    expect(out[60]).toBe('renotified');
    expect(out[120]).toBe('renotified');
  });
  it('a resolved alert that fires again is a new alert', () => {
    const r1 = stepAlert(null, true, 0, cfg);
    let cur = r1.next;
    for (let i = 1; i <= 5; i++) cur = stepAlert(cur, false, i * MIN, cfg).next;
    expect(cur).toBeNull();
    const r2 = stepAlert(cur, true, 6 * MIN, cfg);
    expect(r2).toMatchObject({ transition: 'fired', next: { firedAt: 6 * MIN } });
  });
  it('reports whether the stored row changes', () => {
    const cur = { firedAt: 0, lastNotifiedAt: 0, clearMinutes: 0 };
    expect(stepAlert(cur, true, MIN, cfg).changed).toBe(false);
    expect(stepAlert(cur, false, MIN, cfg).changed).toBe(true);
    expect(stepAlert(null, false, MIN, cfg).changed).toBe(false);
  });
});

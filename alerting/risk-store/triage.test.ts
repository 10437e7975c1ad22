import { describe, expect, it } from 'vitest';
import { notesOf, precisionOf, triageOf } from './triage.ts';

describe('triage reads', () => {
  it('precision is confirmed / (confirmed + false positives), null without either', () => {
    expect(precisionOf(2, 1)).toBeCloseTo(2 / 3);
    expect(precisionOf(0, 3)).toBe(0);
    expect(precisionOf(4, 0)).toBe(1);
    expect(precisionOf(0, 0)).toBeNull();
  });

  it('the state on the alert row becomes ack, assignee and disposition', () => {
    const at = new Date('2026-11-21T05:00:00Z');
    expect(triageOf({ ack_by: null, ack_at: null, assignee: null, disposition: null, disposition_by: null, disposition_at: null, disposition_note: null }))
      .toEqual({ ack: null, assignee: null, disposition: null });
    expect(triageOf({ ack_by: 'Ana', ack_at: at, assignee: 'Min', disposition: 'benign', disposition_by: 'Min', disposition_at: at, disposition_note: null }))
      .toEqual({ ack: { by: 'Ana', at: at.toISOString() }, assignee: 'Min', disposition: { value: 'benign', by: 'Min', at: at.toISOString(), note: '' } });
  });

  it('notes are the note actions of the history', () => {
    const h = [
      { id: '1', action: 'ack' as const, by: 'Ana', at: 'a', value: null, note: null },
      { id: '2', action: 'note' as const, by: 'Min', at: 'b', value: null, note: 'called them' },
      { id: '3', action: 'disposition' as const, by: 'Min', at: 'c', value: 'benign', note: 'fine' },
    ];
    expect(notesOf(h)).toEqual([{ id: '2', by: 'Min', at: 'b', text: 'called them' }]);
  });
});

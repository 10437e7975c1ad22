/**
 * Korean public holidays (관공서의 공휴일에 관한 규정), the default of the rules' `holidays`: local dates on which the
 * volume rules do not judge and which the same-weekday baselines leave out. The lunar holidays (Seollal, Buddha's
 * Birthday, Chuseok) are written out per year, as are the substitute holidays (대체공휴일: Seollal and Chuseok when
 * they overlap a Sunday; Independence Movement Day, Children's Day, Buddha's Birthday, Liberation Day, National
 * Foundation Day, Hangul Day and Christmas when they fall on a Saturday or Sunday) and election days. Add a year
 * here (or give `holidays` in the rules) before it starts.
 */
export const KR_HOLIDAYS: Readonly<Record<number, readonly (readonly [date: string, name: string])[]>> = {
  2026: [
    ['2026-01-01', 'New Year’s Day'],
    ['2026-02-16', 'Seollal (eve)'],
    ['2026-02-17', 'Seollal'],
    ['2026-02-18', 'Seollal (day after)'],
    ['2026-03-01', 'Independence Movement Day'],
    ['2026-03-02', 'substitute holiday (Independence Movement Day)'],
    ['2026-05-05', 'Children’s Day'],
    ['2026-05-24', 'Buddha’s Birthday'],
    ['2026-05-25', 'substitute holiday (Buddha’s Birthday)'],
    ['2026-06-03', 'local elections'],
    ['2026-06-06', 'Memorial Day'],
    ['2026-08-15', 'Liberation Day'],
    ['2026-08-17', 'substitute holiday (Liberation Day)'],
    ['2026-09-24', 'Chuseok (eve)'],
    ['2026-09-25', 'Chuseok'],
    ['2026-09-26', 'Chuseok (day after)'],
    ['2026-10-03', 'National Foundation Day'],
    ['2026-10-05', 'substitute holiday (National Foundation Day)'],
    ['2026-10-09', 'Hangul Day'],
    ['2026-12-25', 'Christmas'],
  ],
  2027: [
    ['2027-01-01', 'New Year’s Day'],
    ['2027-02-06', 'Seollal (eve)'],
    ['2027-02-07', 'Seollal'],
    ['2027-02-08', 'Seollal (day after)'],
    ['2027-02-09', 'substitute holiday (Seollal)'],
    ['2027-03-01', 'Independence Movement Day'],
    ['2027-05-05', 'Children’s Day'],
    ['2027-05-13', 'Buddha’s Birthday'],
    ['2027-06-06', 'Memorial Day'],
    ['2027-08-15', 'Liberation Day'],
    ['2027-08-16', 'substitute holiday (Liberation Day)'],
    ['2027-09-14', 'Chuseok (eve)'],
    ['2027-09-15', 'Chuseok'],
    ['2027-09-16', 'Chuseok (day after)'],
    ['2027-10-03', 'National Foundation Day'],
    ['2027-10-04', 'substitute holiday (National Foundation Day)'],
    ['2027-10-09', 'Hangul Day'],
    ['2027-10-11', 'substitute holiday (Hangul Day)'],
    ['2027-12-25', 'Christmas'],
    ['2027-12-27', 'substitute holiday (Christmas)'],
  ],
};

/** Every date of the table, in order: the default `holidays`. */
export function defaultHolidays(): string[] {
  return Object.values(KR_HOLIDAYS).flatMap((days) => days.map(([d]) => d)).sort();
}

/** Errors the cdc reports to an operator: what is wrong and the fix. Postgres errors are matched by SQLSTATE. */
export class SetupError extends Error {
  constructor(problem: string, readonly fix: string, options?: { cause?: unknown }) {
    super(`${problem}. Fix: ${fix}`, options);
    this.name = 'SetupError';
  }
}

/**
 * A schema change on the source broke a mapped column (dropped, renamed, retyped beyond reading). The cdc stops at
 * the change's Relation message, before publishing or acknowledging anything of the new shape: after the fix, a
 * restart resumes there and nothing is lost.
 */
export class MappedColumnError extends SetupError {
  constructor(readonly table: string, readonly column: string, readonly field: string, problem: string, fix: string) {
    super(`mapped column ${table}.${column} (RISKMON_MAPPING "${field}") ${problem}; riskmon cdc stopped before the first change of the new shape, nothing after it is published or acknowledged`,
      `${fix}; then start riskmon cdc again (it resumes at this change, nothing is lost)`);
    this.name = 'MappedColumnError';
  }
}

/** The replication slot was invalidated (wal_status 'lost'): WAL it needed is gone. */
export class SlotLostError extends SetupError {
  constructor(slot: string) {
    super(`replication slot "${slot}" is invalidated (wal_status = lost): PostgreSQL removed WAL it still needed, so changes after its position are gone from the stream`,
      RECOVERY(slot));
    this.name = 'SlotLostError';
  }
}

export const RECOVERY = (slot: string) =>
  `recreate the slot and rebuild derived state: (1) stop riskmon cdc; (2) SELECT pg_drop_replication_slot('${slot}'); ` +
  `(3) start riskmon cdc --accept-gap (it creates the slot at the current WAL position); (4) rebuild the buckets for the gap from the source tables ` +
  `(riskmon replay --from-lsn <oldest LSN in the topic> covers what the topic retains; changes committed while the slot was lost are only in the source tables)`;

export const SQLSTATE = {
  insufficientPrivilege: '42501',
  undefinedTable: '42P01',
  undefinedObject: '42704',
  duplicateObject: '42710',
  objectInUse: '55006',
  prerequisiteState: '55000',
  configurationLimit: '53400',
} as const;

export function sqlState(err: unknown): string | undefined {
  return (err as { code?: string })?.code;
}

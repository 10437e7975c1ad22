/** The mapped columns of a source table against what the mapping needs of them (setup and the router's Relation messages). */
import { incompatibleType, mappedColumns, type Mapping } from '../lib/mapping.ts';
import { MappedColumnError } from './errors.ts';

/**
 * Why the columns a Relation message announces for `table` break the mapping (a mapped column gone — dropped or
 * renamed — or retyped to something riskmon cannot read), as the error that stops the cdc; null if they do not.
 */
export function mappedColumnProblem(table: string, columns: { name: string; typeOid: number; typeMod: number }[], m: Mapping): MappedColumnError | null {
  const q = table.split('.').map((x) => `"${x.replaceAll('"', '""')}"`).join('.');
  for (const { column, role, field } of mappedColumns(table, m)) {
    const c = columns.find((x) => x.name === column);
    if (!c) {
      return new MappedColumnError(table, column, field, `is gone (dropped or renamed; ${table} now has ${columns.map((x) => x.name).join(', ')})`,
        `set RISKMON_MAPPING "${field}" to the column that now holds it, or restore it (ALTER TABLE ${q} RENAME COLUMN <its new name> TO "${column}")`);
    }
    const why = incompatibleType(role, c.typeOid, c.typeMod);
    if (why) {
      return new MappedColumnError(table, column, field, `now has type ${typeName(c.typeOid, c.typeMod)}: ${why}`,
        `ALTER TABLE ${q} ALTER COLUMN "${column}" TYPE ${SUGGESTED[role]}, or set RISKMON_MAPPING "${field}" to a column of such a type`);
    }
  }
  return null;
}

const SUGGESTED = { id: 'bigint', merchant: 'text', amount: 'bigint', time: 'timestamptz' } as const;

const NAMES: Record<number, string> = {
  16: 'boolean', 20: 'bigint', 21: 'smallint', 23: 'integer', 25: 'text', 700: 'real', 701: 'double precision', 1043: 'varchar',
  1082: 'date', 1083: 'time', 1114: 'timestamp', 1184: 'timestamptz', 1186: 'interval', 1700: 'numeric', 2950: 'uuid', 114: 'json', 3802: 'jsonb',
};

/** A readable name of a column type from its oid and typmod (what pgoutput's Relation message gives). */
export function typeName(oid: number, typeMod: number): string {
  const name = NAMES[oid] ?? `type oid ${oid}`;
  if (oid === 1700 && typeMod >= 4) return `numeric(${(typeMod - 4) >> 16},${(typeMod - 4) & 0xffff})`;
  if (oid === 1043 && typeMod >= 4) return `varchar(${typeMod - 4})`;
  return name;
}

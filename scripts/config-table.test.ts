import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BEGIN, CONFIG_DOC, configTable, END, generatedPart, withTable } from './config-table.ts';

describe('the configuration table of docs/configuration.md', () => {
  it('is the one the option specs print (run `npx tsx scripts/config-table.ts --write` after changing an option)', () => {
    expect(generatedPart(readFileSync(CONFIG_DOC, 'utf8'))).toBe(configTable());
  });

  it('the check itself: a changed row or missing markers are seen', () => {
    const doc = withTable(`# t\n\n${BEGIN}\n${END}\n`, configTable());
    expect(generatedPart(doc)).toBe(configTable());
    expect(generatedPart(doc.replace('`8080`', '`8081`'))).not.toBe(configTable());
    expect(generatedPart('# no markers')).toBeNull();
    expect(configTable()).toMatch(/^\| variable \| used by \| default \| meaning \|/);
    expect(configTable()).toContain('`RISKMON_API_KEYS`');
  });
});

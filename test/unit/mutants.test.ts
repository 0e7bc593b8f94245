import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { occurrences, plant, RottenMutantError } from '../../dev/mutants/apply';
import { type Mutant, MUTANTS, ruleLabel } from '../../dev/mutants/mutants';

/**
 * The kill suite's mutants (dev/mutants/mutants.ts) stay plantable: each snippet occurs exactly once in
 * today's tree, so a mutant cannot rot silently when the code it mutates moves. Whether each is caught is
 * `npm run mutants` (slow: a simulation campaign per mutant), not this test.
 */
const root = join(__dirname, '..', '..');

describe('the kill suite', () => {
  it('has at least 22 mutants, each with a kebab-case name of its own, a rule and a reason', () => {
    expect(MUTANTS.length).toBeGreaterThanOrEqual(22);
    const names = MUTANTS.map((mutant) => mutant.name);
    expect(new Set(names).size).toBe(names.length);
    for (const mutant of MUTANTS) {
      expect(mutant.name).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*$/);
      expect(ruleLabel(mutant.rule)).not.toBe('');
      expect(mutant.why.length).toBeGreaterThan(20);
    }
  });

  it.each(MUTANTS.map((mutant): [string, Mutant] => [mutant.name, mutant]))(
    '%s: its snippet occurs exactly once in its file, and planting it changes the file',
    (_name, mutant) => {
      const source = readFileSync(join(root, mutant.file), 'utf8');
      expect(occurrences(source, mutant.find)).toBe(1);
      expect(plant(source, mutant)).not.toBe(source);
      for (const test of mutant.tests ?? []) expect(existsSync(join(root, test)), test).toBe(true);
    },
  );

  it('refuses to plant a snippet that occurs twice or not at all', () => {
    const mutant: Mutant = {
      name: 'example',
      rule: { invariant: 2 },
      file: 'example.ts',
      find: 'await propagate();',
      replace: '',
      why: 'an example',
    };
    expect(() => plant('await propagate();\nawait propagate();\n', mutant)).toThrow(RottenMutantError);
    expect(() => plant('await commit();\n', mutant)).toThrow(/occurs 0 times in example.ts/);
    expect(plant('await commit();\nawait propagate();\n', mutant)).toBe('await commit();\n\n');
  });
});

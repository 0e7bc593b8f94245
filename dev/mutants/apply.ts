// Dev, mutants: planting one mutant in a tree, refusing loudly when its snippet does not occur exactly once.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Mutant } from './mutants';

/** How many times `snippet` occurs in `text` (occurrences may not overlap). */
export function occurrences(text: string, snippet: string): number {
  if (snippet.length === 0) return 0;
  let count = 0;
  for (let at = text.indexOf(snippet); at >= 0; at = text.indexOf(snippet, at + snippet.length)) count++;
  return count;
}

/** A mutant whose snippet is not where it says: it must be fixed, never skipped. */
export class RottenMutantError extends Error {
  constructor(mutant: Mutant, found: number) {
    super(
      `mutant ${mutant.name}: its find snippet occurs ${found} times in ${mutant.file}, not exactly once; ` +
        'the code moved: update the mutant (dev/mutants/mutants.ts)',
    );
    this.name = 'RottenMutantError';
  }
}

/** The source with the mutant planted; throws RottenMutantError unless `find` occurs exactly once. */
export function plant(source: string, mutant: Mutant): string {
  const found = occurrences(source, mutant.find);
  if (found !== 1) throw new RottenMutantError(mutant, found);
  const at = source.indexOf(mutant.find);
  return source.slice(0, at) + mutant.replace + source.slice(at + mutant.find.length);
}

/** Plants the mutant in the tree at `root` (its file rewritten in place). */
export function plantInTree(root: string, mutant: Mutant): void {
  const path = join(root, mutant.file);
  writeFileSync(path, plant(readFileSync(path, 'utf8'), mutant));
}

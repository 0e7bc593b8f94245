import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The layers' import rules (.dependency-cruiser.cjs, docs/architecture.md) have teeth: a tree in the
 * intended shape passes, and a tree with one planted violation fails exactly that rule. That they hold
 * on the code itself is `npm run lint:layers`, part of `npm run lint` in `npm test`.
 */
type RuleSet = { forbidden: { name: string }[]; options: Record<string, unknown> };
const root = join(__dirname, '..', '..');
const config = createRequire(__filename)(join(root, '.dependency-cruiser.cjs')) as RuleSet;

async function violationsOf(baseDir: string, paths: string[]): Promise<{ rule: string; from: string; to: string }[]> {
  const { cruise } = await import('dependency-cruiser');
  const { includeOnly, doNotFollow } = config.options;
  const result = await cruise(paths, {
    baseDir,
    validate: true,
    ruleSet: { forbidden: config.forbidden } as never,
    includeOnly,
    doNotFollow,
    tsPreCompilationDeps: true,
  } as never);
  const output = result.output as { summary: { violations: { rule: { name: string }; from: string; to: string }[] } };
  return output.summary.violations.map(({ rule, from, to }) => ({ rule: rule.name, from, to }));
}

const scratch: string[] = [];
afterAll(() => scratch.forEach((folder) => rmSync(folder, { recursive: true, force: true })));

/** A tiny tree: one file per layer, importing only what `imports` says. */
function plant(imports: Record<string, string[]>): string {
  const folder = mkdtempSync(join(tmpdir(), 'layers-'));
  scratch.push(folder);
  for (const [file, targets] of Object.entries(imports)) {
    mkdirSync(join(folder, dirname(file)), { recursive: true });
    const lines = targets.map((target, index) => {
      const relative = join(
        ...dirname(file)
          .split('/')
          .map(() => '..'),
        target,
      ).replace(/\.ts$/, '');
      return `import * as m${index} from '${relative.startsWith('.') ? relative : `./${relative}`}';\nexport const u${index} = m${index};`;
    });
    writeFileSync(join(folder, file), `${lines.join('\n')}\nexport const here = '${file}';\n`);
  }
  return folder;
}

// Every layer and what it may import: the clean shape all planted trees start from.
const clean: Record<string, string[]> = {
  'functions/a.ts': ['shared/hosts/a.ts', 'shared/api/a.ts'],
  'shared/hosts/a.ts': ['shared/api/a.ts', 'shared/useCases/a.ts'],
  'shared/api/a.ts': ['shared/useCases/a.ts', 'shared/domain/a.ts'],
  'shared/useCases/a.ts': ['shared/protocol/a.ts', 'shared/storage/a.ts', 'shared/config/a.ts'],
  'shared/protocol/a.ts': ['shared/storage/a.ts', 'shared/domain/a.ts'],
  'shared/storage/a.ts': ['shared/domain/a.ts', 'shared/config/a.ts'],
  'shared/domain/a.ts': [],
  'shared/config/a.ts': [],
  'dev/a.ts': ['shared/useCases/a.ts', 'shared/hosts/a.ts'],
};

const planted: [rule: string, file: string, target: string][] = [
  ['storage-knows-only-the-domain', 'shared/storage/a.ts', 'shared/protocol/a.ts'],
  ['storage-knows-only-the-domain', 'shared/storage/a.ts', 'shared/useCases/a.ts'],
  ['protocol-below-use-cases', 'shared/protocol/a.ts', 'shared/useCases/a.ts'],
  ['use-cases-below-the-api', 'shared/useCases/a.ts', 'shared/api/a.ts'],
  ['api-knows-no-runtime', 'shared/api/a.ts', 'shared/hosts/a.ts'],
  ['domain-is-pure', 'shared/domain/a.ts', 'shared/config/a.ts'],
  ['config-is-a-leaf', 'shared/config/a.ts', 'shared/domain/a.ts'],
  ['product-never-imports-dev-tooling', 'shared/hosts/a.ts', 'dev/a.ts'],
  ['functions-are-entry-points', 'shared/api/a.ts', 'functions/a.ts'],
];

describe('the layers', () => {
  it('a tree in the intended shape passes', async () => {
    expect(await violationsOf(plant(clean), ['shared', 'functions', 'dev'])).toEqual([]);
  });

  it.each(planted)('%s fails on %s importing %s', async (rule, file, target) => {
    const folder = plant({ ...clean, [file]: [...(clean[file] ?? []), target] });
    const found = await violationsOf(folder, ['shared', 'functions', 'dev']);
    expect(found.map(({ rule: name }) => name)).toContain(rule);
    expect(found.every(({ rule: name }) => name === rule || name === 'no-cycles')).toBe(true);
  });

  it('no-cycles fails on two modules importing each other', async () => {
    const folder = plant({
      ...clean,
      'shared/domain/b.ts': ['shared/domain/a.ts'],
      'shared/domain/a.ts': ['shared/domain/b.ts'],
    });
    expect((await violationsOf(folder, ['shared'])).map(({ rule }) => rule)).toContain('no-cycles');
  });
});

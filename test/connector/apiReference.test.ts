import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { routes } from '../../shared/api/route';
import { timers } from '../../shared/hosts/triggers';
import { loadFunctions } from '../../shared/hosts/nodeHttp/loadFunctions';
import { API_REFERENCE_PATH, renderApiReference } from '../../dev/ops/apiReference';

// The API reference is generated from the route table, like the connector: no hand-kept list of routes.
const root = join(__dirname, '..', '..');
let generated: string;

beforeAll(async () => {
  await loadFunctions(join(root, 'functions'));
  generated = renderApiReference();
});

describe('docs/api-reference.md', () => {
  it('names every registered route and timer once', () => {
    expect(routes.length).toBeGreaterThan(20);
    for (const route of routes) {
      expect(generated.match(new RegExp(`^### ${route.operationId}$`, 'gm')), route.operationId).toHaveLength(1);
      expect(generated).toContain(`\`${route.method} /api/${route.route}\``);
    }
    for (const timer of timers) expect(generated).toContain(`\`${timer.name}\``);
  });

  it('is what npm run api-reference wrote (regenerate after changing a route or a schema)', () => {
    const written = readFileSync(join(root, API_REFERENCE_PATH), 'utf8');
    expect(written).toBe(generated);
  });
});

import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resetServices } from '../../shared/useCases/services';
import type { RunningAzurite } from '../../dev/local/azurite';
import { demoRecords } from '../../dev/local/demoData';
import { prepareLocal, serveLocal } from '../../dev/local/start';
import { call } from '../support/http';

/**
 * What a newcomer meets: `npm start` (its own Azurite, the demo records, the local host) prints the
 * explorer's link, the link serves the page, and the README walkthrough's curl commands add their
 * connection to the graph the page draws.
 */
const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');
const lines: string[] = [];
let azurite: RunningAzurite;
let server: Server;
let base: string;

beforeAll(async () => {
  resetServices();
  ({ azurite } = await prepareLocal(true, (line) => lines.push(line)));
  const served = await serveLocal(0, (line) => lines.push(line));
  server = served.server;
  base = `http://localhost:${served.port}/api`;
}, 60_000);
afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await azurite?.stop();
});

/** A shell variable the walkthrough sets, as written in the README. */
const readmeVariable = (name: string): string => {
  const match = new RegExp(`^${name}=(\\S+)$`, 'm').exec(readme);
  if (!match?.[1]) throw new Error(`README sets no ${name}`);
  return match[1];
};

describe('npm start', () => {
  it("prints the explorer's link, on the walkthrough's account, and the link serves the page", async () => {
    const link = `${base}/explorer?record=${demoRecords.contoso.id}`;
    expect(lines).toContain(`Connection explorer: ${link}`);
    expect(readmeVariable('ACCOUNT')).toBe(demoRecords.contoso.id);
    expect(readmeVariable('CONTACT')).toBe(demoRecords.ada.id);
    const page = await call(link);
    expect(page.status).toBe(200);
    expect(page.body).toContain('data-mode="local"');
  });

  it("has the walkthrough's records in the graph, and the walkthrough's own create adds its connection", async () => {
    const principalJson = /printf '%s' '(\{.*?\})' \| base64/.exec(readme)?.[1] as string;
    const headers = { 'x-ms-client-principal': Buffer.from(principalJson).toString('base64') };
    const before = await call(`${base}/records/${demoRecords.contoso.id}/graph`, { headers });
    expect(before.status).toBe(200);
    expect(before.body.nodes.map((node: { name: string }) => node.name)).toEqual(
      expect.arrayContaining(['Contoso', 'Grace Hopper', 'Fabrikam']),
    );

    // The README's create, as written there (its body with the shell variables filled in).
    const body =
      /connections -H "x-ms-client-principal: \$P" -H 'content-type: application\/json' -d '(\{[\s\S]*?\})'\n/.exec(
        readme,
      )?.[1] as string;
    const filled = body
      .replace(`"'$ACCOUNT'"`, `"${readmeVariable('ACCOUNT')}"`)
      .replace(`"'$CONTACT'"`, `"${readmeVariable('CONTACT')}"`);
    const created = await call(`${base}/connections`, { method: 'POST', headers, body: JSON.parse(filled) });
    expect(created.status, JSON.stringify(created.body)).toBe(201);

    const after = await call(`${base}/records/${demoRecords.contoso.id}/graph`, { headers });
    expect(after.body.nodes).toHaveLength(before.body.nodes.length + 1);
    expect(after.body.edges.find((edge: { record2id: string }) => edge.record2id === demoRecords.ada.id)).toMatchObject(
      { record2name: 'Ada Lovelace', description: 'Main contact for renewals' },
    );
  });
});

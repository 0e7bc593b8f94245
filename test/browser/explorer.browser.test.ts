import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { forEachLimited } from '../../shared/protocol/concurrency';
import { createConnectionSchema } from '../../shared/domain/connection';
import { getServices } from '../../shared/useCases/services';
import { demoCallers, demoRecords, demoRoles, seedDemo } from '../../dev/local/demoData';
import { clickNode, collectErrors, counts, elementData, launchBrowser, outputPath, settle } from '../support/browser';
import { call, principal, startApi, type TestApi } from '../support/http';

/**
 * The connection explorer in a real headless Chromium, against the app served the way `npm start` serves
 * it (the local host, local development mode) with the demo records `npm start` loads, over Azurite.
 * Screenshots go to test/output/ on every run.
 */
let api: TestApi;
let browser: Browser | undefined;
let launchError: unknown;
let page: Page;
let errors: string[];
let requested: string[];
const walkthrough = principal(demoCallers.walkthrough.id);
const big = { id: 'b1b00000-0000-4000-8000-000000000001', size: 120 };
const record = (id: string) => `r-${id}`;
const { contoso, grace, alan, ada, katherine, fabrikam } = demoRecords;

beforeAll(async () => {
  api = await startApi();
  await getServices().ready();
  await seedDemo(getServices());
  // A record with more connections than the page draws at once: 60 employees, 40 contacts and 20 teams without a role.
  await forEachLimited(
    Array.from({ length: big.size }, (_, index) => index + 1),
    16,
    async (n) => {
      await getServices().connections.create(
        createConnectionSchema.parse({
          record1id: big.id,
          record1objecttypecode: 'account',
          record1name: 'Big account',
          record2id: `b2b00000-0000-4000-8000-${String(n).padStart(12, '0')}`,
          record2objecttypecode: n > 100 ? 'team' : 'contact',
          record2name: `Person ${n}`,
          ...(n <= 60 && { record1roleid: demoRoles.employer.id }),
        }),
        demoCallers.walkthrough,
      );
    },
  );
  // A missing browser fails every test with the launcher's message (how to install one), never skips them.
  browser = await launchBrowser().catch((error: unknown) => {
    launchError = error;
    return undefined;
  });
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await api?.close();
});
afterEach(async () => {
  await page?.close();
});

async function open(recordId: string, query = ''): Promise<void> {
  if (!browser) throw launchError;
  page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  errors = collectErrors(page);
  requested = [];
  page.on('request', (request) => requested.push(new URL(request.url()).pathname + new URL(request.url()).search));
  await page.goto(`${api.baseUrl}/explorer?record=${recordId}${query}`);
  await settle(page);
}

const apiGet = async (path: string) => (await call(`${api.baseUrl}${path}`, { headers: walkthrough })).body;

describe('the connection explorer, in Chromium', () => {
  it('draws a seeded record: the record in the centre, a node per neighbour, an edge per connection, both roles on it', async () => {
    await open(contoso.id);
    expect(await counts(page)).toMatchObject({ records: 6, connections: 5, groups: 0, drawnNodes: 6, drawnEdges: 5 });
    const graph = await apiGet(`/records/${contoso.id}/graph`);
    expect(graph.nodes).toHaveLength(6);
    expect(graph.edges).toHaveLength(5);
    expect(await page.textContent('#status')).toContain('Contoso (account): 5 connections');
    expect((await elementData(page, record(contoso.id)))?.classes).toContain('root');
    const toGrace = await elementData(page, `c-dd000000-0000-4000-8000-000000000001`);
    expect(toGrace).toMatchObject({
      source: record(contoso.id),
      target: record(grace.id),
      sourceRole: 'Employer',
      targetRole: 'Employee',
    });
    expect((await elementData(page, `c-dd000000-0000-4000-8000-000000000002`))?.classes).toContain('inactive'); // Alan, deactivated
    expect((await elementData(page, `c-dd000000-0000-4000-8000-000000000004`))?.classes).toContain('out-of-date'); // Fabrikam, ended 2025
    // Records not yet expanded carry their number of connections (a badge, and in the label).
    const graceNode = await elementData(page, record(grace.id));
    expect(graceNode?.label).toContain('Grace Hopper\ncontact · 3 connections');
    expect(graceNode?.badge).toMatch(/^data:image\/svg\+xml/);
    expect(await page.isVisible('#local-caller')).toBe(true);
    expect(await page.textContent('#local-caller')).toContain('Local development only');
    await page.screenshot({ path: outputPath('explorer-contoso.png'), fullPage: true });
    expect(errors).toEqual([]);
  });

  it('expands a neighbour with a click, and another with the keyboard', async () => {
    await open(contoso.id);
    await clickNode(page, record(grace.id));
    await settle(page);
    // Grace's connections: Contoso (drawn already), Ada (a friend) and Katherine (a stakeholder role with no counterpart).
    expect(await counts(page)).toMatchObject({ records: 8, connections: 7 });
    expect(await elementData(page, record(ada.id))).toBeDefined();
    expect(await elementData(page, record(katherine.id))).toMatchObject({
      label: expect.stringContaining('Katherine Johnson\nsystemuser'),
    });
    expect(await elementData(page, 'c-dd000000-0000-4000-8000-000000000007')).toMatchObject({
      sourceRole: 'Stakeholder',
      targetRole: '',
    });
    expect((await elementData(page, record(grace.id)))?.badge).toBeUndefined(); // expanded: no count badge any more

    await page.focus('#graph');
    await page.keyboard.press('Home');
    expect(await page.textContent('#announce')).toContain('Contoso');
    for (let step = 0; step < 10 && !(await page.textContent('#announce'))?.startsWith('Fabrikam'); step++)
      await page.keyboard.press('ArrowRight');
    expect(await page.textContent('#announce')).toContain('Fabrikam, account, 2 connections, not expanded');
    await page.keyboard.press('Enter');
    await settle(page);
    // Fabrikam employs Ada: one more connection between records already drawn.
    expect(await counts(page)).toMatchObject({ records: 8, connections: 8 });
    expect(await page.textContent('#details-body')).toContain('Expanded');
    await page.screenshot({ path: outputPath('explorer-expanded.png'), fullPage: true });
    await page.screenshot({
      path: outputPath('explorer-readme.png'),
      clip: { x: 0, y: 228, width: 1280, height: 750 },
    });
    expect(errors).toEqual([]);
  });

  it('filters by role, state and date, keeping the filters in the address', async () => {
    await open(contoso.id);
    await page.selectOption('#filter-role', demoRoles.employer.id);
    await settle(page);
    expect(await counts(page)).toMatchObject({ records: 3, connections: 2 });
    expect(await elementData(page, record(grace.id))).toBeDefined();
    expect(await elementData(page, record(alan.id))).toBeDefined();
    expect(page.url()).toContain(`roleid=${demoRoles.employer.id}`);
    await page.selectOption('#filter-state', '0');
    await settle(page);
    expect(await counts(page)).toMatchObject({ records: 2, connections: 1 });
    await page.click('#clear-filters');
    await settle(page);
    await page.fill('#filter-activeon', '2026-01-15');
    await page.dispatchEvent('#filter-activeon', 'change');
    await settle(page);
    // In effect on that day: everything but the supplier contract (ended 2025) and the review (starts October 2026).
    expect(await counts(page)).toMatchObject({ records: 4, connections: 3 });
    expect(await elementData(page, record(fabrikam.id))).toBeUndefined();
    expect(errors).toEqual([]);
  });

  it("shows the same data as a table one click away, and a connection's fields and shares in the side panel", async () => {
    await open(contoso.id);
    await page.click('#show-table');
    expect(await page.isVisible('#table-view')).toBe(true);
    expect(await page.isHidden('#graph')).toBe(true);
    const rows = page.locator('#connections-table tbody tr');
    expect(await rows.count()).toBe(5);
    expect(await page.textContent('#table-caption')).toBe('6 records, 5 connections drawn');
    const graceRow = page.locator('#connections-table tbody tr', { hasText: 'Grace Hopper' });
    expect(await graceRow.textContent()).toContain('Employer');
    expect(await page.locator('#connections-table tbody tr', { hasText: 'Alan Turing' }).textContent()).toContain(
      'Inactive',
    );
    await graceRow.getByRole('button', { name: 'Details' }).click();
    await page.waitForSelector(`#details-shares li[data-principal="${demoCallers.second.id}"]`);
    const details = await page.textContent('#details-body');
    expect(details).toContain('Head of engineering');
    expect(details).toContain('2024-01-01');
    expect(await page.textContent('#details-shares')).toContain('ReadAccess');
    // Its history, newest first: the share the demo granted after creating it.
    await page.waitForSelector('#details-history li[data-version="1"]');
    const history = await page.locator('#details-history ol.history > li').allTextContents();
    expect(history.at(-1)).toContain('create v1');
    expect(history.join('\n')).toContain(`share:${demoCallers.second.id}: — → ReadAccess`);
    await page.screenshot({ path: outputPath('explorer-table.png'), fullPage: true });
    await page.click('#show-graph');
    expect(await page.isVisible('#graph')).toBe(true);
    expect(errors).toEqual([]);
  });

  it("charts the record's roles and its connections by type with the API's own counts", async () => {
    await open(contoso.id);
    const bars = async (list: string) =>
      Object.fromEntries(
        await page
          .locator(`${list} li`)
          .evaluateAll((items) =>
            items.map((item) => [item.getAttribute('data-key'), Number(item.getAttribute('data-count'))]),
          ),
      ) as Record<string, number>;
    const roles = await bars('#chart-roles');
    const fromApi = await apiGet(`/records/${contoso.id}/roles`);
    expect(roles).toEqual(
      Object.fromEntries(
        fromApi.value.map((role: { connectionroleid: string; count: number }) => [role.connectionroleid, role.count]),
      ),
    );
    expect(roles).toEqual({ [demoRoles.employer.id]: 2, [demoRoles.customer.id]: 1 });
    const types = await bars('#chart-types');
    expect(types).toEqual({ contact: 2, account: 1, team: 1, appointment: 1 });
    for (const [type, count] of Object.entries(types)) {
      expect(
        (await apiGet(`/records/${contoso.id}/connections?othertypecode=${type}&top=1&count=true`)).count,
        type,
      ).toBe(count);
    }
    // A bar is a filter too.
    await page.locator('#chart-types li[data-key="contact"] button').click();
    await settle(page);
    expect(await counts(page)).toMatchObject({ records: 3, connections: 2 });
    expect(errors).toEqual([]);
  });

  it('groups a record with more connections than a page, by role or by type, and draws a group a page at a time', async () => {
    await open(big.id);
    expect(await page.textContent('#status')).toContain('Big account (account) has 120 connections');
    expect(await counts(page)).toMatchObject({ records: 1, connections: 0, groups: 2, drawnNodes: 3 });
    // One look at the record alone (a page and its count), never a page of neighbours it would not draw.
    expect(requested.filter((url) => url.includes('/graph?'))).toEqual([expect.stringContaining('limit=1')]);
    const groupId = `g-${big.id}-role-${demoRoles.employer.id}`;
    expect(await elementData(page, groupId)).toMatchObject({ label: 'Employer\n60 connections' });
    expect(await elementData(page, `g-${big.id}-role-none`)).toMatchObject({ label: 'No role\n60 connections' });
    await clickNode(page, groupId);
    await settle(page);
    expect(await counts(page)).toMatchObject({ records: 51, connections: 50, groups: 2 });
    await page.focus('#graph');
    await page.keyboard.press('Enter'); // the group is still selected: its next page
    await settle(page);
    expect(await counts(page)).toMatchObject({ records: 61, connections: 60 });
    expect(await page.textContent('#status')).toContain('10 more connections drawn');
    await page.screenshot({ path: outputPath('explorer-grouped.png'), fullPage: true });

    await page.selectOption('#group-by', 'type');
    await settle(page);
    expect(await counts(page)).toMatchObject({ records: 1, groups: 2 });
    expect(await elementData(page, `g-${big.id}-type-2`)).toMatchObject({ label: 'contact\n100 connections' });
    expect(await elementData(page, `g-${big.id}-type-9`)).toMatchObject({ label: 'team\n20 connections' });
    const types = await page
      .locator('#chart-types li')
      .evaluateAll((items) =>
        items.map((item) => `${item.getAttribute('data-key')}=${item.getAttribute('data-count')}`),
      );
    expect(types).toEqual(['contact=100', 'team=20']);
    await clickNode(page, `g-${big.id}-type-9`);
    await settle(page);
    expect(await counts(page)).toMatchObject({ records: 21, connections: 20 });
    expect(errors).toEqual([]);
  });

  it('shows only what the caller may read: the second user sees the one connection shared with them', async () => {
    await open(contoso.id);
    await page.selectOption('#caller-preset', 'second');
    await settle(page);
    expect(await counts(page)).toMatchObject({ records: 2, connections: 1 });
    expect(await elementData(page, record(grace.id))).toBeDefined();
    await page.selectOption('#caller-preset', 'walkthrough');
    await settle(page);
    expect(await counts(page)).toMatchObject({ records: 6, connections: 5 });
    expect(errors).toEqual([]);
  });
});

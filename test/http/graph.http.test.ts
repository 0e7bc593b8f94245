import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { forEachLimited } from '../../shared/protocol/concurrency';
import { createConnectionSchema } from '../../shared/domain/connection';
import { getServices } from '../../shared/useCases/services';
import { call, expectProblem, principal, startApi, type TestApi } from '../support/http';
import { countRequests, type RequestCounter } from '../support/storage';

/**
 * GET /records/{id}/graph over a real socket against Azurite: depth, limits, truncation, filters, access
 * and the storage requests each answer costs (counted on the wire to the Connections table).
 */
let api: TestApi;
let requests: RequestCounter;
const aliceId = 'a11ce000-0000-4000-8000-00000000a11c';
const bobId = 'b0b00000-0000-4000-8000-000000000b0b';
const alice = principal(aliceId);
const bob = principal(bobId);
const admin = principal('ad000000-0000-4000-8000-0000000000ad', { roles: ['Connections.Admin'] });

const record = (prefix: string, n: number) => `${prefix}0000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const A = record('a', 1);
const B = [1, 2, 3, 4].map((n) => record('b', n));
const C = [1, 2, 3].map((n) => record('c', n));
const D1 = record('d', 1);
const H = record('e', 1); // connected to A by a connection Bob cannot read
const X = record('f', 1); // reachable from A only through H
const role: Record<string, string> = {};
const connection: Record<string, string> = {};

const get = (path: string, headers = alice) => call(`${api.baseUrl}${path}`, { headers });

async function connect(
  key: string,
  record1id: string,
  type1: string,
  record2id: string,
  type2: string,
  extra: Record<string, unknown> = {},
) {
  const response = await call(`${api.baseUrl}/connections`, {
    method: 'POST',
    headers: alice,
    body: {
      record1id,
      record1objecttypecode: type1,
      record1name: `name of ${record1id.slice(0, 1)}${record1id.slice(-1)}`,
      record2id,
      record2objecttypecode: type2,
      record2name: `name of ${record2id.slice(0, 1)}${record2id.slice(-1)}`,
      ...extra,
    },
  });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  connection[key] = response.body.connectionid;
}

const shareWithBob = (recordId: string, key: string) =>
  call(`${api.baseUrl}/records/${recordId}/connections/${connection[key]}/access`, {
    method: 'POST',
    headers: alice,
    body: { principalid: bobId, principaltype: 'systemuser', accessmask: 'ReadAccess' },
  });

beforeAll(async () => {
  api = await startApi();
  for (const name of ['Employer', 'Employee']) {
    const created = await call(`${api.baseUrl}/connectionroles`, { method: 'POST', headers: admin, body: { name } });
    role[name] = created.body.connectionroleid;
  }
  await call(`${api.baseUrl}/connectionroles/${role.Employer}/matchingroles/${role.Employee}`, {
    method: 'PUT',
    headers: admin,
  });

  await connect('A-B1', A, 'account', B[0] as string, 'contact', { record1roleid: role.Employer });
  await connect('A-B2', A, 'account', B[1] as string, 'contact', {
    record1roleid: role.Employer,
    effectiveend: '2025-06-30',
  });
  await connect('A-B3', A, 'account', B[2] as string, 'contact');
  await connect('A-B4', A, 'account', B[3] as string, 'contact');
  await connect('A-H', A, 'account', H, 'team');
  await connect('B1-C1', B[0] as string, 'contact', C[0] as string, 'contact');
  await connect('C2-B1', C[1] as string, 'contact', B[0] as string, 'contact'); // record 2 side: found from B1 as its reciprocal
  await connect('B2-C3', B[1] as string, 'contact', C[2] as string, 'contact');
  await connect('B1-B2', B[0] as string, 'contact', B[1] as string, 'contact'); // between two neighbours
  await connect('C1-D1', C[0] as string, 'contact', D1, 'contact');
  await connect('H-X', H, 'team', X, 'contact');
  expect(
    (
      await call(`${api.baseUrl}/records/${A}/connections/${connection['A-B4']}`, {
        method: 'PATCH',
        headers: alice,
        body: { statecode: 1 },
      })
    ).status,
  ).toBe(200);
  for (const [recordId, key] of [
    [A, 'A-B1'],
    [B[0], 'B1-C1'],
    [H, 'H-X'],
  ] as const)
    expect((await shareWithBob(recordId as string, key)).status).toBe(200);

  requests = countRequests(getServices().tables.connections);
  await getServices().roles.catalog(); // role names come from the cached catalog: load it before counting
});
afterAll(async () => api.close());
beforeEach(() => requests.reset());

const ids = (items: { recordid: string }[]) => items.map((item) => item.recordid).sort();
const pairs = (edges: { record1id: string; record2id: string }[]) =>
  edges
    .map(
      (edge) =>
        `${edge.record1id.slice(0, 1)}${edge.record1id.slice(-1)}-${edge.record2id.slice(0, 1)}${edge.record2id.slice(-1)}`,
    )
    .sort();

describe('GET /records/{recordid}/graph', () => {
  it('depth 1 (the default): the record, its neighbours and its connections, in one storage request', async () => {
    const response = await get(`/records/${A}/graph`);
    expect(response.status).toBe(200);
    const graph = response.body;
    expect(graph).toMatchObject({ recordid: A, depth: 1, truncated: false, truncatedby: [] });
    expect(ids(graph.nodes)).toEqual([A, ...B, H].sort());
    expect(graph.nodes[0]).toMatchObject({
      recordid: A,
      depth: 0,
      expanded: true,
      hasmore: false,
      objecttypecode: 1,
      objecttypename: 'account',
      name: 'name of a1',
    });
    expect(graph.nodes.find((node: { recordid: string }) => node.recordid === H)).toMatchObject({
      depth: 1,
      expanded: false,
      objecttypename: 'team',
      name: 'name of e1',
    });
    expect(pairs(graph.edges)).toEqual(['a1-b1', 'a1-b2', 'a1-b3', 'a1-b4', 'a1-e1']);
    const employer = graph.edges.find((edge: { record2id: string }) => edge.record2id === B[0]);
    expect(employer).toMatchObject({
      record1roleid: role.Employer,
      record1rolename: 'Employer',
      record2roleid: role.Employee,
      record2rolename: 'Employee',
      depth: 1,
      statecode: 0,
    });
    expect(graph.edges.find((edge: { record2id: string }) => edge.record2id === B[3]).statecode).toBe(1);
    expect(requests.count).toBe(1);
  });

  it('depth 2: each neighbour expanded with one request, each connection once, nothing three hops away', async () => {
    const response = await get(`/records/${A}/graph?depth=2`);
    expect(response.status).toBe(200);
    const graph = response.body;
    expect(ids(graph.nodes)).toEqual([A, ...B, H, ...C, X].sort());
    expect(ids(graph.nodes)).not.toContain(D1);
    // B1 - B2 joins two records of the same hop: it is read from whichever of them was expanded first
    // (pages come in key order, and the ids are random), so only the pair is fixed, not its direction.
    const unordered = pairs(graph.edges)
      .map((pair) => pair.split('-').sort().join('-'))
      .sort();
    expect(unordered).toEqual([
      'a1-b1',
      'a1-b2',
      'a1-b3',
      'a1-b4',
      'a1-e1',
      'b1-b2',
      'b1-c1',
      'b1-c2',
      'b2-c3',
      'e1-f1',
    ]);
    expect(
      graph.edges
        .filter((edge: { record2id: string }) => edge.record2id !== B[0] && edge.record2id !== B[1])
        .every(
          (edge: { record1id: string; record2id: string; depth: number }) =>
            (edge.depth === 1) === (edge.record1id === A),
        ),
    ).toBe(true);
    expect(graph.edges.filter((edge: { depth: number }) => edge.depth === 2)).toHaveLength(5);
    // The reciprocal of C2 -> B1 is read from B1, so B1 is its record 1 here.
    expect(graph.edges.find((edge: { record2id: string }) => edge.record2id === C[1])).toMatchObject({
      record1id: B[0],
      ismaster: false,
    });
    const expanded = graph.nodes.filter((node: { expanded: boolean }) => node.expanded);
    expect(ids(expanded)).toEqual([A, ...B, H].sort());
    expect(requests.count).toBe(expanded.length); // 6: one partition query per expanded record
    expect(requests.requests.every((request) => request.startsWith('GET '))).toBe(true);
  });

  it("count=true: every record's number of connections, counting only the records whose connections were not all read", async () => {
    const response = await get(`/records/${A}/graph?count=true`);
    const count = Object.fromEntries(
      response.body.nodes.map((node: { recordid: string; connectioncount: number }) => [
        node.recordid,
        node.connectioncount,
      ]),
    );
    expect(count).toEqual({
      [A]: 5,
      [B[0] as string]: 4,
      [B[1] as string]: 3,
      [B[2] as string]: 1,
      [B[3] as string]: 1,
      [H]: 2,
    });
    // The root's page was complete (no count needed); each of the 5 neighbours: a one-row page and a key-only count.
    expect(requests.count).toBe(1 + 5 * 2);
  });

  it('keeps to the node limit and says so; expands nothing further once it is reached', async () => {
    const response = await get(`/records/${A}/graph?depth=2&limit=3`);
    expect(response.body.nodes).toHaveLength(3);
    expect(response.body.edges).toHaveLength(2);
    expect(response.body).toMatchObject({ truncated: true, truncatedby: ['limit'] });
    expect(requests.count).toBe(1);
  });

  it('reads at most top connections per record, says so, and links to the rest', async () => {
    const response = await get(`/records/${A}/graph?top=2`);
    expect(response.body).toMatchObject({ truncated: true, truncatedby: ['top'] });
    const root = response.body.nodes[0];
    expect(root).toMatchObject({ recordid: A, hasmore: true });
    expect(response.body.edges).toHaveLength(2);
    expect(requests.count).toBe(1);
    const seen = response.body.edges.map((edge: { connectionid: string }) => edge.connectionid);
    let next: string | undefined = root.nextLink;
    while (next) {
      const page = await call(next, { headers: alice });
      expect(page.status).toBe(200);
      seen.push(...page.body.value.map((half: { connectionid: string }) => half.connectionid));
      next = page.body.nextLink;
    }
    expect(new Set(seen).size).toBe(5);
  });

  it('never shows a connection the caller cannot read, nor a record reached only through one', async () => {
    const response = await get(`/records/${A}/graph?depth=2&count=true`, bob);
    expect(response.status).toBe(200);
    expect(ids(response.body.nodes)).toEqual([A, B[0], C[0]].sort());
    expect(pairs(response.body.edges)).toEqual(['a1-b1', 'b1-c1']);
    // Bob may read H -> X, but H is connected to A by a connection he cannot read: neither is in A's graph.
    expect(ids(response.body.nodes)).not.toContain(H);
    expect(ids(response.body.nodes)).not.toContain(X);
    expect(response.body.nodes.find((node: { recordid: string }) => node.recordid === C[0]).connectioncount).toBe(1);
    const fromH = await get(`/records/${H}/graph?depth=2`, bob);
    expect(ids(fromH.body.nodes)).toEqual([H, X].sort());
    const stranger = await get(`/records/${A}/graph?depth=2`, principal('5e000000-0000-4000-8000-000000000005'));
    expect(stranger.body.nodes).toEqual([
      expect.objectContaining({ recordid: A, objecttypecode: null, expanded: true }),
    ]);
    expect(stranger.body.edges).toEqual([]);
  });

  it("filters the record's own connections by role and type, and every hop by state and date", async () => {
    const employees = await get(`/records/${A}/graph?depth=2&roleid=${role.Employer}`);
    expect(ids(employees.body.nodes)).toEqual([A, B[0], B[1], C[0], C[1], C[2]].sort());
    const teams = await get(`/records/${A}/graph?othertypecode=team`);
    expect(ids(teams.body.nodes)).toEqual([A, H].sort());
    const active = await get(`/records/${A}/graph?depth=2&statecode=0&count=true`);
    expect(ids(active.body.nodes)).not.toContain(B[3]);
    expect(active.body.nodes[0].connectioncount).toBe(4);
    const today = await get(`/records/${A}/graph?activeon=2026-01-15`);
    expect(ids(today.body.nodes)).not.toContain(B[1]); // that employment ended in June 2025
    expect(ids(today.body.nodes)).toContain(B[0]);
    const nextHop = today.body.nodes.find((node: { recordid: string }) => node.recordid === B[0]);
    expect(nextHop.expanded).toBe(false);
  });

  it('refuses bad input with 400 problems, and answers no one without a caller', async () => {
    for (const query of [
      'depth=3',
      'depth=0',
      'depth=x',
      'limit=0',
      'limit=1001',
      'top=0',
      'count=yes',
      'statecode=2',
      'activeon=soon',
      'roleid=nope',
      'colour=red',
    ]) {
      const response = await get(`/records/${A}/graph?${query}`);
      expectProblem(response, 400, 'ValidationFailed');
    }
    expectProblem(await get(`/records/${A}/graph?othertypecode=starship`), 400, 'UnknownObjectType');
    expectProblem(await get('/records/not-a-guid/graph'), 400, 'ValidationFailed');
    expectProblem(await call(`${api.baseUrl}/records/${A}/graph`), 401, 'Unauthenticated');
    expect(requests.count).toBe(0);
  });
});

describe('a record with more connections than a page', () => {
  const big = record('9', 1);
  const size = 250;

  beforeAll(async () => {
    const owner = { id: aliceId, teams: [], isAdmin: false };
    const numbers = Array.from({ length: size }, (_, index) => index + 1);
    await forEachLimited(numbers, 16, async (n) => {
      await getServices().connections.create(
        createConnectionSchema.parse({
          record1id: big,
          record1objecttypecode: 'account',
          record1name: 'Big account',
          record2id: record('8', n),
          record2objecttypecode: n % 5 === 0 ? 'systemuser' : 'contact',
          record2name: `Person ${n}`,
          ...(n % 2 === 0 && { record1roleid: role.Employer }),
        }),
        owner,
      );
    });
    requests.reset();
  });

  it('shows one page of it, the exact total, and costs one request plus one count per record on the page', async () => {
    const plain = await get(`/records/${big}/graph?top=100`);
    expect(plain.body.nodes).toHaveLength(101);
    expect(plain.body.nodes[0]).toMatchObject({ hasmore: true, expanded: true });
    expect(plain.body.truncatedby).toEqual(['top']);
    expect(requests.count).toBe(1);

    requests.reset();
    const counted = await get(`/records/${big}/graph?top=100&count=true`);
    expect(counted.body.nodes[0].connectioncount).toBe(size);
    expect(counted.body.nodes.slice(1).every((node: { connectioncount: number }) => node.connectioncount === 1)).toBe(
      true,
    );
    // 1 page + the root's count (a one-row page and a key-only count of 250) + 2 per neighbour.
    expect(requests.count).toBe(1 + 2 + 100 * 2);
  });

  it("counts one role's or one type's share exactly, for grouping", async () => {
    const employer = await get(`/records/${big}/graph?top=1&count=true&roleid=${role.Employer}&limit=1`);
    expect(employer.body.nodes[0].connectioncount).toBe(size / 2);
    const users = await get(`/records/${big}/graph?top=1&count=true&othertypecode=systemuser&limit=1`);
    expect(users.body.nodes[0].connectioncount).toBe(size / 5);
  });
});

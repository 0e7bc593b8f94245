import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LooseJson } from '../support/json';
import { call, principal, startApi, type TestApi } from '../support/http';

let api: TestApi;
let roleId: string;
const ids = {
  owner: '0e000000-0000-4000-8000-0000000000e1',
  admin: '0e000000-0000-4000-8000-0000000000ad',
  stranger: '0e000000-0000-4000-8000-0000000000e2',
  member: '0e000000-0000-4000-8000-0000000000e3',
  holder: '0e000000-0000-4000-8000-0000000000e4',
  victim: '0e000000-0000-4000-8000-0000000000e5',
  team: '7ea00000-0000-4000-8000-0000000000e6',
};
const owner = principal(ids.owner);
const adminHeaders = principal(ids.admin, { roles: ['Connections.Admin'] });

beforeAll(async () => {
  api = await startApi();
  const role = await call(`${api.baseUrl}/connectionroles`, {
    method: 'POST',
    headers: adminHeaders,
    body: { name: 'Colleague' },
  });
  roleId = role.body.connectionroleid;
  await call(`${api.baseUrl}/connectionroles/${roleId}/matchingroles/${roleId}`, {
    method: 'PUT',
    headers: adminHeaders,
  });
});
afterAll(async () => api.close());

interface Fixture {
  record: string;
  connectionid: string;
  url: string;
}

/** A fresh connection of the owner's, shared as the cell needs, so no cell depends on another. */
async function fixture(share?: {
  principalid: string;
  principaltype: 'systemuser' | 'team';
  accessmask: string;
}): Promise<Fixture> {
  const record = randomUUID();
  const created = await call(`${api.baseUrl}/connections`, {
    method: 'POST',
    headers: owner,
    body: {
      record1id: record,
      record1objecttypecode: 'contact',
      record1roleid: roleId,
      record2id: randomUUID(),
      record2objecttypecode: 'contact',
    },
  });
  expect(created.status).toBe(201);
  const url = `${api.baseUrl}/records/${record}/connections/${created.body.connectionid}`;
  for (const grant of [
    share,
    { principalid: ids.victim, principaltype: 'systemuser' as const, accessmask: 'ReadAccess' },
  ]) {
    if (!grant) continue;
    expect((await call(`${url}/access`, { method: 'POST', headers: owner, body: grant })).status).toBe(200);
  }
  return { record, connectionid: created.body.connectionid, url };
}

type Operation = (f: Fixture, headers: Record<string, string>) => Promise<{ status: number; body: LooseJson }>;

const operations: Record<string, Operation> = {
  get: (f, headers) => call(f.url, { headers }),
  update: (f, headers) => call(f.url, { method: 'PATCH', headers, body: { description: 'changed' } }),
  assign: (f, headers) => call(f.url, { method: 'PATCH', headers, body: { ownerid: ids.holder } }),
  delete: (f, headers) => call(f.url, { method: 'DELETE', headers }),
  grant: (f, headers) =>
    call(`${f.url}/access`, {
      method: 'POST',
      headers,
      body: { principalid: randomUUID(), principaltype: 'systemuser', accessmask: 'ReadAccess' },
    }),
  modify: (f, headers) =>
    call(`${f.url}/access/${ids.victim}`, { method: 'PUT', headers, body: { accessmask: 'ReadAccess' } }),
  revoke: (f, headers) => call(`${f.url}/access/${ids.victim}`, { method: 'DELETE', headers }),
  shares: (f, headers) => call(`${f.url}/access`, { headers }),
  principalAccess: (f, headers) => call(`${f.url}/access/${ids.victim}`, { headers }),
  // Lists answer 200 either way; the status here is whether the connection is in them (200) or not (404).
  listByRecord: async (f, headers) =>
    visibility(await call(`${api.baseUrl}/records/${f.record}/connections?count=true`, { headers }), f),
  listByRole: async (f, headers) =>
    visibility(await call(`${api.baseUrl}/connections?roleid=${roleId}&top=1000`, { headers }), f),
  recordRoles: async (f, headers) => {
    const response = await call(`${api.baseUrl}/records/${f.record}/roles`, { headers });
    return {
      status:
        response.status === 200 && response.body.count === 1 ? 200 : response.status === 200 ? 404 : response.status,
      body: response.body,
    };
  },
  cascade: (f, headers) => call(`${api.baseUrl}/records/${f.record}/connections`, { method: 'DELETE', headers }),
};

function visibility(response: { status: number; body: LooseJson }, f: Fixture): { status: number; body: LooseJson } {
  if (response.status !== 200) return response;
  const found = response.body.value.some((half: { connectionid: string }) => half.connectionid === f.connectionid);
  if ('count' in response.body) expect(response.body.count).toBe(found ? 1 : 0);
  return { status: found ? 200 : 404, body: response.body };
}

const ok = {
  get: 200,
  update: 200,
  assign: 200,
  delete: 204,
  grant: 200,
  modify: 200,
  revoke: 204,
  shares: 200,
  principalAccess: 200,
  listByRecord: 200,
  listByRole: 200,
  recordRoles: 200,
};
const hidden = Object.fromEntries(Object.keys(ok).map((name) => [name, 404]));
const readOnly = {
  ...hidden,
  get: 200,
  update: 403,
  assign: 403,
  delete: 403,
  grant: 403,
  modify: 403,
  revoke: 403,
  shares: 200,
  principalAccess: 200,
  listByRecord: 200,
  listByRole: 200,
  recordRoles: 200,
};

interface Row {
  who: string;
  headers: Record<string, string> | undefined;
  share?: { principalid: string; principaltype: 'systemuser' | 'team'; accessmask: string };
  expected: Record<string, number>;
}

const holder = (accessmask: string): Row['share'] => ({
  principalid: ids.holder,
  principaltype: 'systemuser',
  accessmask,
});
const rows: Row[] = [
  {
    who: 'no principal',
    headers: undefined,
    expected: Object.fromEntries(Object.keys(operations).map((name) => [name, 401])),
  },
  { who: 'a stranger', headers: principal(ids.stranger), expected: { ...hidden, cascade: 403 } },
  { who: 'the owner', headers: owner, expected: { ...ok, cascade: 403 } },
  { who: 'an administrator', headers: adminHeaders, expected: { ...ok, cascade: 200 } },
  {
    who: 'a member of a team with ReadAccess and WriteAccess',
    headers: principal(ids.member, { teams: [ids.team] }),
    share: { principalid: ids.team, principaltype: 'team', accessmask: 'ReadAccess, WriteAccess' },
    expected: { ...readOnly, update: 200, cascade: 403 },
  },
  {
    who: 'a holder of ReadAccess',
    headers: principal(ids.holder),
    share: holder('ReadAccess'),
    expected: { ...readOnly, cascade: 403 },
  },
  ...[
    'WriteAccess',
    'AppendAccess',
    'AppendToAccess',
    'CreateAccess',
    'DeleteAccess',
    'ShareAccess',
    'AssignAccess',
  ].map((right) => ({
    who: `a holder of ${right} alone`,
    headers: principal(ids.holder),
    share: holder(right),
    expected: { ...hidden, cascade: 403 },
  })),
  {
    who: 'a holder of ReadAccess and WriteAccess',
    headers: principal(ids.holder),
    share: holder('ReadAccess, WriteAccess'),
    expected: { ...readOnly, update: 200, cascade: 403 },
  },
  {
    who: 'a holder of ReadAccess and DeleteAccess',
    headers: principal(ids.holder),
    share: holder('ReadAccess, DeleteAccess'),
    expected: { ...readOnly, delete: 204, cascade: 403 },
  },
  {
    who: 'a holder of ReadAccess and ShareAccess',
    headers: principal(ids.holder),
    share: holder('ReadAccess, ShareAccess'),
    expected: { ...readOnly, grant: 200, modify: 200, revoke: 204, cascade: 403 },
  },
  {
    who: 'a holder of ReadAccess and AssignAccess',
    headers: principal(ids.holder),
    share: holder('ReadAccess, AssignAccess'),
    expected: { ...readOnly, assign: 200, cascade: 403 },
  },
  {
    who: 'a holder of ReadAccess, WriteAccess and AssignAccess',
    headers: principal(ids.holder),
    share: holder('ReadAccess, WriteAccess, AssignAccess'),
    expected: { ...readOnly, update: 200, assign: 200, cascade: 403 },
  },
];

describe('the authorization matrix', () => {
  for (const row of rows) {
    it(`answers ${row.who} exactly as expected on every endpoint`, async () => {
      const actual: Record<string, number> = {};
      for (const [name, operation] of Object.entries(operations)) {
        const f = await fixture(row.share);
        actual[name] = (await operation(f, row.headers ?? {})).status;
      }
      expect(actual).toEqual(row.expected);
    });
  }
});

describe('sharing', () => {
  it('applies to both halves, whichever URL is used, and survives updates and state changes', async () => {
    const f = await fixture();
    const created = await call(f.url, { headers: owner });
    const reciprocalUrl = `${api.baseUrl}/records/${created.body.record2id}/connections/${created.body.relatedconnectionid}`;
    const granted = await call(`${reciprocalUrl}/access`, {
      method: 'POST',
      headers: owner,
      body: { principalid: ids.holder, principaltype: 'systemuser', accessmask: 1 },
    });
    expect(granted.body).toEqual({
      principalid: ids.holder,
      principaltype: 'systemuser',
      accessmask: 1,
      accessrights: 'ReadAccess',
    });
    const added = await call(`${f.url}/access`, {
      method: 'POST',
      headers: owner,
      body: { principalid: ids.holder, principaltype: 'systemuser', accessmask: 'WriteAccess' },
    });
    expect(added.body).toMatchObject({ accessmask: 3, accessrights: 'ReadAccess, WriteAccess' });

    await call(f.url, { method: 'PATCH', headers: owner, body: { description: 'still shared' } });
    await call(reciprocalUrl, { method: 'PATCH', headers: owner, body: { statecode: 1 } });
    await call(reciprocalUrl, { method: 'PATCH', headers: owner, body: { statecode: 0 } });
    const holderHeaders = principal(ids.holder);
    expect((await call(f.url, { headers: holderHeaders })).status).toBe(200);
    expect((await call(reciprocalUrl, { headers: holderHeaders })).status).toBe(200);
    const fromMaster = (await call(`${f.url}/access`, { headers: owner })).body.value;
    const fromReciprocal = (await call(`${reciprocalUrl}/access`, { headers: owner })).body.value;
    expect(fromReciprocal).toEqual(fromMaster);
    expect(fromMaster).toHaveLength(2);

    expect(
      (
        await call(`${reciprocalUrl}/access/${ids.holder}`, {
          method: 'PUT',
          headers: owner,
          body: { accessmask: 'ReadAccess' },
        })
      ).body.accessmask,
    ).toBe(1);
    expect((await call(`${f.url}/access/${ids.holder}`, { method: 'DELETE', headers: owner })).status).toBe(204);
    expect((await call(f.url, { headers: holderHeaders })).status).toBe(404);
    expect(
      (await call(`${f.url}/access`, { headers: owner })).body.value.map(
        (share: { principalid: string }) => share.principalid,
      ),
    ).toEqual([ids.victim]);
    expect(
      (await call(`${f.url}/access/${ids.holder}`, { method: 'PUT', headers: owner, body: { accessmask: 1 } })).status,
    ).toBe(404);
    expect((await call(`${f.url}/access/${ids.holder}`, { method: 'DELETE', headers: owner })).status).toBe(204);
  });

  it('cannot pass on rights the sharer does not hold', async () => {
    const f = await fixture(holder('ReadAccess, ShareAccess'));
    const tooMuch = await call(`${f.url}/access`, {
      method: 'POST',
      headers: principal(ids.holder),
      body: { principalid: randomUUID(), principaltype: 'systemuser', accessmask: 'ReadAccess, DeleteAccess' },
    });
    expect(tooMuch.status).toBe(403);
    expect(tooMuch.body.code).toBe('AccessDenied');
  });

  it('says where each right comes from', async () => {
    const f = await fixture({ principalid: ids.team, principaltype: 'team', accessmask: 'ReadAccess, WriteAccess' });
    await call(`${f.url}/access`, {
      method: 'POST',
      headers: owner,
      body: { principalid: ids.member, principaltype: 'systemuser', accessmask: 'ReadAccess' },
    });
    const member = principal(ids.member, { teams: [ids.team] });
    const own = await call(`${f.url}/access/${ids.member}`, { headers: member });
    expect(own.body).toEqual({
      principalid: ids.member,
      accessmask: 3,
      accessrights: 'ReadAccess, WriteAccess',
      origins: [
        { right: 'ReadAccess', from: ['direct', `team:${ids.team}`] },
        { right: 'WriteAccess', from: [`team:${ids.team}`] },
      ],
    });
    const ofOwner = await call(`${f.url}/access/${ids.owner}`, { headers: member });
    expect(ofOwner.body.origins[0]).toEqual({ right: 'ReadAccess', from: ['owner'] });
    const ofTeam = await call(`${f.url}/access/${ids.team}`, { headers: member });
    expect(ofTeam.body.accessrights).toBe('ReadAccess, WriteAccess');
  });

  it('refuses bad share requests with problems', async () => {
    const f = await fixture();
    for (const body of [
      {},
      { principalid: 'x', principaltype: 'systemuser', accessmask: 1 },
      { principalid: randomUUID(), principaltype: 'businessunit', accessmask: 1 },
      { principalid: randomUUID(), principaltype: 'systemuser', accessmask: 0 },
      { principalid: randomUUID(), principaltype: 'systemuser', accessmask: 'FlyAccess' },
      { principalid: randomUUID(), principaltype: 'systemuser', accessmask: 1, extra: true },
      // Beyond 32 bits, negative or fractional: never a share with no rights, or with rights by wrap-around.
      ...[1e300, 2 ** 32, 2 ** 32 + 1, 2 ** 53, -1, 1.5, '4294967297'].map((accessmask) => ({
        principalid: randomUUID(),
        principaltype: 'systemuser',
        accessmask,
      })),
    ]) {
      const response = await call(`${f.url}/access`, { method: 'POST', headers: owner, body });
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.headers.get('content-type')).toContain('application/problem+json');
    }
    // Nothing was written: the fixture's one share is all there is.
    expect(
      (await call(`${f.url}/access`, { headers: owner })).body.value.map(
        (share: { principalid: string }) => share.principalid,
      ),
    ).toEqual([ids.victim]);
  });

  it('lists only what the caller may read, and nextLink works when most rows are hidden', async () => {
    const hub = randomUUID();
    const reader = principal(ids.holder);
    const visible: string[] = [];
    for (let index = 0; index < 30; index++) {
      const created = await call(`${api.baseUrl}/connections`, {
        method: 'POST',
        headers: owner,
        body: {
          record1id: hub,
          record1objecttypecode: 'account',
          record2id: randomUUID(),
          record2objecttypecode: 'contact',
        },
      });
      if (index % 7 === 3) {
        visible.push(created.body.connectionid);
        await call(`${api.baseUrl}/records/${hub}/connections/${created.body.connectionid}/access`, {
          method: 'POST',
          headers: owner,
          body: { principalid: ids.holder, principaltype: 'systemuser', accessmask: 'ReadAccess' },
        });
      }
    }
    const seen: string[] = [];
    let next: string | undefined = `${api.baseUrl}/records/${hub}/connections?top=2&count=true`;
    let first = true;
    while (next) {
      const page: { status: number; body: LooseJson } = await call(next, { headers: reader });
      expect(page.status).toBe(200);
      if (first) expect(page.body.count).toBe(visible.length);
      first = false;
      seen.push(...page.body.value.map((half: { connectionid: string }) => half.connectionid));
      next = page.body.nextLink;
    }
    expect(seen.sort()).toEqual([...visible].sort());
    const everything = await call(`${api.baseUrl}/records/${hub}/connections?top=1000&count=true`, { headers: owner });
    expect(everything.body.count).toBe(30);
  });
});

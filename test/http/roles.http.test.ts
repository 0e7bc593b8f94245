import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LooseJson } from '../support/json';
import { call, principal, startApi, type TestApi } from '../support/http';

// The organisation has the Sales tables it queries about (opportunity, competitor) as custom types.
let api: TestApi;
const user = principal('0a000000-0000-4000-8000-0000000000a1');
const admin = principal('0a000000-0000-4000-8000-0000000000ad', { roles: ['Connections.Admin'] });

beforeAll(async () => {
  api = await startApi({ CUSTOM_OBJECT_TYPES: '3:opportunity,123:competitor' });
});
afterAll(async () => api.close());

const post = (path: string, body: unknown, headers = admin) =>
  call(`${api.baseUrl}${path}`, { method: 'POST', headers, body });
const get = (path: string, headers = user) => call(`${api.baseUrl}${path}`, { headers });

async function createRole(name: string, extra: Record<string, unknown> = {}): Promise<string> {
  const response = await post('/connectionroles', { name, ...extra });
  expect(response.status).toBe(201);
  return response.body.connectionroleid;
}
const match = (a: string, b: string) =>
  call(`${api.baseUrl}/connectionroles/${a}/matchingroles/${b}`, { method: 'PUT', headers: admin });

async function connect(body: Record<string, unknown>): Promise<LooseJson> {
  const response = await post('/connections', body, user);
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  return response.body;
}

describe('/api/connectionroles', () => {
  it('lets administrators create, change, match and delete roles, and everyone read them', async () => {
    const forbidden = await post('/connectionroles', { name: 'Sneaky' }, user);
    expect(forbidden.status).toBe(403);
    expect(forbidden.headers.get('content-type')).toContain('application/problem+json');

    const created = await post('/connectionroles', {
      name: 'Mentor',
      category: 1,
      description: 'Guides',
      objecttypecodes: ['contact', 'systemuser'],
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      name: 'Mentor',
      category: 1,
      categoryname: 'Business',
      objecttypecodes: [2, 8],
      objecttypenames: ['contact', 'systemuser'],
      statecode: 0,
      statuscode: 1,
    });
    const id = created.body.connectionroleid;
    expect(created.headers.get('location')).toBe(`${api.baseUrl}/connectionroles/${id}`);
    expect((await get(`/connectionroles/${id}`)).body.name).toBe('Mentor');

    const etag = created.headers.get('etag') ?? '';
    const renamed = await call(`${api.baseUrl}/connectionroles/${id}`, {
      method: 'PATCH',
      headers: { ...admin, 'if-match': etag },
      body: { name: 'Coach' },
    });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ name: 'Coach', versionnumber: 2 });
    expect(
      (
        await call(`${api.baseUrl}/connectionroles/${id}`, {
          method: 'PATCH',
          headers: { ...admin, 'if-match': etag },
          body: { name: 'Lost' },
        })
      ).status,
    ).toBe(412);
    expect(
      (await call(`${api.baseUrl}/connectionroles/${id}`, { method: 'PATCH', headers: user, body: { name: 'Mine' } }))
        .status,
    ).toBe(403);

    const mentee = await createRole('Mentee');
    expect((await match(id, mentee)).status).toBe(204);
    expect(
      (await get(`/connectionroles/${mentee}/matchingroles`)).body.value.map((role: { name: string }) => role.name),
    ).toEqual(['Coach']);
    expect(
      (await call(`${api.baseUrl}/connectionroles/${mentee}/matchingroles/${id}`, { method: 'DELETE', headers: admin }))
        .status,
    ).toBe(204);
    expect((await get(`/connectionroles/${id}/matchingroles`)).body.value).toEqual([]);

    expect((await call(`${api.baseUrl}/connectionroles/${id}`, { method: 'DELETE', headers: user })).status).toBe(403);
    expect((await call(`${api.baseUrl}/connectionroles/${id}`, { method: 'DELETE', headers: admin })).status).toBe(204);
    expect((await get(`/connectionroles/${id}`)).status).toBe(404);
  });

  it('refuses bad role input with problems', async () => {
    for (const body of [
      {},
      { name: '' },
      { name: 'x', category: 7 },
      { name: 'x', objecttypecodes: ['starship'] },
      { name: 'x', colour: 'red' },
    ]) {
      const response = await post('/connectionroles', body);
      expect(response.status).toBe(400);
      expect(response.body.code).toEqual(expect.any(String));
    }
    expect((await get('/connectionroles?category=7')).status).toBe(400);
    expect((await get('/connectionroles/not-a-guid')).status).toBe(400);
    expect((await match(randomUUID(), randomUUID())).status).toBe(404);
  });

  it('refuses to delete a role in use, with 409', async () => {
    const lender = await createRole('Lender');
    await connect({
      record1id: randomUUID(),
      record1objecttypecode: 'account',
      record1roleid: lender,
      record2id: randomUUID(),
      record2objecttypecode: 'account',
    });
    const refused = await call(`${api.baseUrl}/connectionroles/${lender}`, { method: 'DELETE', headers: admin });
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe('ConnectionRoleInUse');
  });
});

describe("the seed documents' questions", () => {
  const accountA = randomUUID();
  const contactB = randomUUID();
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    ids.doctor = await createRole('Doctor', { objecttypecodes: ['contact'] });
    ids.patient = await createRole('Patient', { objecttypecodes: ['contact'] });
    ids.nurse = await createRole('Nurse', { objecttypecodes: ['contact'] });
    ids.assistant = await createRole('Medical Assistant', { objecttypecodes: ['contact'] });
    ids.friend = await createRole('Friend', { category: 3 });
    ids.vendor = await createRole('Vendor', { category: 4, objecttypecodes: ['account', 'competitor'] });
    ids.customer = await createRole('Customer', { category: 4 });
    ids.salesperson = await createRole('Salesperson', { category: 4, objecttypecodes: ['contact', 'systemuser'] });
    ids.deal = await createRole('Deal', { category: 4, objecttypecodes: ['opportunity'] });
    for (const other of ['patient', 'nurse', 'assistant']) await match(ids.doctor, ids[other] as string);
    await match(ids.friend, ids.friend);
    await match(ids.vendor, ids.customer);
    await match(ids.salesperson, ids.deal);

    // Account A: a vendor to two customers, a friend of a contact; contact B: salesperson on two opportunities, one open.
    await connect({
      record1id: accountA,
      record1objecttypecode: 'account',
      record1roleid: ids.vendor,
      record2id: randomUUID(),
      record2objecttypecode: 'account',
    });
    await connect({
      record1id: randomUUID(),
      record1objecttypecode: 'account',
      record1roleid: ids.customer,
      record2id: accountA,
      record2objecttypecode: 'account',
      record2roleid: ids.vendor,
    });
    await connect({
      record1id: accountA,
      record1objecttypecode: 'account',
      record1roleid: ids.friend,
      record2id: randomUUID(),
      record2objecttypecode: 'contact',
    });
    const open = await connect({
      record1id: contactB,
      record1objecttypecode: 'contact',
      record1roleid: ids.salesperson,
      record2id: randomUUID(),
      record2objecttypecode: 'opportunity',
      record2name: 'Big deal',
    });
    const closed = await connect({
      record1id: contactB,
      record1objecttypecode: 'contact',
      record1roleid: ids.salesperson,
      record2id: randomUUID(),
      record2objecttypecode: 'opportunity',
    });
    await call(`${api.baseUrl}/records/${contactB}/connections/${closed.connectionid}`, {
      method: 'PATCH',
      headers: user,
      body: { statecode: 1 },
    });
    expect(open.record2roleid).toBe(ids.deal);
    // Friends among contacts, and a doctor with a patient.
    await connect({
      record1id: contactB,
      record1objecttypecode: 'contact',
      record1roleid: ids.friend,
      record2id: randomUUID(),
      record2objecttypecode: 'contact',
    });
    await connect({
      record1id: randomUUID(),
      record1objecttypecode: 'contact',
      record1roleid: ids.doctor,
      record2id: randomUUID(),
      record2objecttypecode: 'contact',
    });
  });

  it('Show all connections for account A', async () => {
    const response = await get(`/records/${accountA}/connections?count=true`);
    expect(response.body.count).toBe(3);
    expect(response.body.value).toHaveLength(3);
  });

  it('Show all roles for account A, and the total number of roles for the account', async () => {
    const response = await get(`/records/${accountA}/roles`);
    expect(response.status).toBe(200);
    expect(response.body.count).toBe(2);
    expect(response.body.value).toEqual([
      { connectionroleid: ids.friend, name: 'Friend', count: 1 },
      { connectionroleid: ids.vendor, name: 'Vendor', count: 2 },
    ]);
  });

  it('Show all roles for the competitor (by type code)', async () => {
    const names = (await get('/connectionroles?validfor=123')).body.value.map((role: { name: string }) => role.name);
    expect(names).toContain('Vendor');
    expect(names).toContain('Friend'); // applies to every type
    expect(names).not.toContain('Doctor');
    expect(names).not.toContain('Deal');
  });

  it('Find all connections where account A is a "Vendor"', async () => {
    const response = await get(`/records/${accountA}/connections?roleid=${ids.vendor}`);
    expect(response.body.value).toHaveLength(2);
    expect(response.body.value.every((half: { record1roleid: string }) => half.record1roleid === ids.vendor)).toBe(
      true,
    );
  });

  it('Find all open opportunities where contact B is a "Salesperson"', async () => {
    const response = await get(
      `/records/${contactB}/connections?roleid=${ids.salesperson}&othertypecode=opportunity&statecode=0`,
    );
    expect(response.body.value).toHaveLength(1);
    expect(response.body.value[0]).toMatchObject({
      name: 'Big deal',
      record2objecttypename: 'opportunity',
      record2roleid: ids.deal,
    });
  });

  it('Find all matching roles for a "Doctor" role', async () => {
    const response = await get(`/connectionroles/${ids.doctor}/matchingroles`);
    expect(response.body.value.map((role: { name: string }) => role.name)).toEqual([
      'Medical Assistant',
      'Nurse',
      'Patient',
    ]);
  });

  it('Find all contacts that have the role "Friend"', async () => {
    const response = await get(`/connections?roleid=${ids.friend}&typecode=contact&count=true`);
    expect(response.status).toBe(200);
    expect(response.body.count).toBe(3); // account A's friend, contact B and contact B's friend (Friend matches itself)
    expect(
      response.body.value.every(
        (half: { record1objecttypename: string; record1roleid: string }) =>
          half.record1objecttypename === 'contact' && half.record1roleid === ids.friend,
      ),
    ).toBe(true);
    const everyone = await get(`/connections?roleid=${ids.friend}&count=true`);
    expect(everyone.body.count).toBe(4); // and account A itself
  });

  it('Which roles can a contact take toward an opportunity (the role picker)', async () => {
    const names = (await get('/connectionroles?validfor=contact&counterpart=opportunity')).body.value.map(
      (role: { name: string }) => role.name,
    );
    // Salesperson matches Deal (opportunities); Friend applies to every type and matches itself; Lender and
    // Mentee (made above) have no matching role, so record 1 can take them with record 2's role left empty.
    expect(names.sort()).toEqual(['Friend', 'Lender', 'Mentee', 'Salesperson']);
    // Doctor's, Vendor's and Customer's matching roles are all for other types; Deal is not for contacts.
    for (const excluded of ['Doctor', 'Patient', 'Vendor', 'Customer', 'Deal']) expect(names).not.toContain(excluded);
  });

  it("offers a role with no matching role in the picker, and create accepts it with record 2's role empty", async () => {
    const stakeholder = await createRole('Stakeholder', { category: 1000, objecttypecodes: ['contact'] });
    const offered = (await get('/connectionroles?validfor=contact&counterpart=opportunity&statecode=0')).body.value.map(
      (role: { connectionroleid: string }) => role.connectionroleid,
    );
    expect(offered).toContain(stakeholder);
    const created = await connect({
      record1id: randomUUID(),
      record1objecttypecode: 'contact',
      record1roleid: stakeholder,
      record2id: randomUUID(),
      record2objecttypecode: 'opportunity',
    });
    expect(created).toMatchObject({ record1roleid: stakeholder, record2roleid: null });
    // Once it gets a matching role for accounts only, it is no longer offered toward opportunities.
    const sponsor = await createRole('Sponsored', { objecttypecodes: ['account'] });
    await match(stakeholder, sponsor);
    const after = (await get('/connectionroles?validfor=contact&counterpart=opportunity')).body.value.map(
      (role: { connectionroleid: string }) => role.connectionroleid,
    );
    expect(after).not.toContain(stakeholder);
    expect(
      (await get('/connectionroles?validfor=contact&counterpart=account')).body.value.map(
        (role: { connectionroleid: string }) => role.connectionroleid,
      ),
    ).toContain(stakeholder);
  });

  it('pages role lists and role queries with nextLink', async () => {
    const first = await get('/connectionroles?top=4&count=true');
    expect(first.body.value).toHaveLength(4);
    expect(first.body.count).toBeGreaterThan(8);
    const names = first.body.value.map((role: { name: string }) => role.name);
    let next: string | undefined = first.body.nextLink;
    while (next) {
      const page: { body: LooseJson } = await call(next, { headers: user });
      names.push(...page.body.value.map((role: { name: string }) => role.name));
      next = page.body.nextLink;
    }
    expect(names).toHaveLength(first.body.count);
    expect(new Set(names).size).toBe(names.length);
    const friends = await get(`/connections?roleid=${ids.friend}&top=1`);
    expect(friends.body.value).toHaveLength(1);
    const second = await call(friends.body.nextLink, { headers: user });
    expect(second.body.value).toHaveLength(1);
    expect(second.body.value[0].connectionid).not.toBe(friends.body.value[0].connectionid);
  });

  it('refuses role queries without a valid role id', async () => {
    expect((await get('/connections')).status).toBe(400);
    expect((await get('/connections?roleid=nope')).status).toBe(400);
    expect((await get(`/connections?roleid=${ids.friend}&typecode=starship`)).status).toBe(400);
  });
});

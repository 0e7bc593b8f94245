import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json, LooseJson } from '../support/json';
import { call, principal, startApi, type TestApi } from '../support/http';

let api: TestApi;
const ada = principal('ada00000-0000-4000-8000-00000000000a');
const asAda = { headers: ada };

beforeAll(async () => {
  api = await startApi();
});
afterAll(async () => api.close());

const newConnection = (body: Record<string, unknown> = {}): Json => ({
  record1id: randomUUID(),
  record1objecttypecode: 'account',
  record1name: 'Contoso',
  record2id: randomUUID(),
  record2objecttypecode: 2,
  record2name: 'Ada',
  ...body,
});

const create = (body: Record<string, unknown>, headers: Record<string, string> = ada) =>
  call(`${api.baseUrl}/connections`, { method: 'POST', headers, body });

function expectProblem(
  response: { status: number; headers: Headers; body: LooseJson },
  status: number,
  code?: string,
): void {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toContain('application/problem+json');
  expect(response.body).toMatchObject({
    status,
    title: expect.any(String),
    detail: expect.any(String),
    code: expect.any(String),
  });
  if (code) expect(response.body.code).toBe(code);
}

describe('POST /api/connections', () => {
  it('creates both halves: 201 with the master, Location and ETag, and the reciprocal is visible from the other record', async () => {
    const body = newConnection({ description: 'Key account contact' });
    const created = await create(body);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      ismaster: true,
      record1id: body.record1id,
      record1objecttypecode: 1,
      record1objecttypename: 'account',
      record2objecttypecode: 2,
      record2objecttypename: 'contact',
      name: 'Ada',
      statecode: 0,
      statuscode: 1,
      ownerid: 'ada00000-0000-4000-8000-00000000000a',
      createdby: 'ada00000-0000-4000-8000-00000000000a',
      versionnumber: 1,
    });
    expect(created.headers.get('etag')).toMatch(/^"[^"]+"$/);
    const location = created.headers.get('location') ?? '';
    expect(location).toBe(`${api.baseUrl}/records/${body.record1id}/connections/${created.body.connectionid}`);
    expect((await call(location, asAda)).body).toEqual(created.body);

    const fromContact = await call(`${api.baseUrl}/records/${body.record2id}/connections`, asAda);
    expect(fromContact.status).toBe(200);
    expect(fromContact.body.value).toHaveLength(1);
    expect(fromContact.body.value[0]).toMatchObject({
      connectionid: created.body.relatedconnectionid,
      relatedconnectionid: created.body.connectionid,
      ismaster: false,
      record1id: body.record2id,
      record1objecttypename: 'contact',
      record2id: body.record1id,
      record2objecttypename: 'account',
      name: 'Contoso',
      description: 'Key account contact',
    });
  });

  it('returns the existing connection (200) for a repeated identical create, and 409 for the same id with other content', async () => {
    const body = newConnection({ connectionid: randomUUID() });
    expect((await create(body)).status).toBe(201);
    const again = await create(body);
    expect(again.status).toBe(200);
    expect(again.body.connectionid).toBe(body.connectionid);
    expect((await call(`${api.baseUrl}/records/${body.record1id}/connections`, asAda)).body.value).toHaveLength(1);
    expectProblem(await create({ ...body, description: 'different' }), 409, 'DuplicateRecord');
  });

  it("enforces Dataverse's rules with their error names", async () => {
    const record = randomUUID();
    expectProblem(
      await create(newConnection({ record1id: record, record2id: record.toUpperCase() })),
      400,
      'CannotConnectToSelf',
    );
    expectProblem(
      await create(newConnection({ effectivestart: '2026-05-01', effectiveend: '2026-04-01' })),
      400,
      'ConnectionInvalidStartEndDate',
    );
    const first = await create(newConnection());
    const duplicate = await create({
      ...newConnection(),
      record1id: first.body.record1id,
      record2id: first.body.record2id,
    });
    expectProblem(duplicate, 409, 'ConnectionExists');
    expect(duplicate.body.existingconnectionid).toBe(first.body.connectionid);
    expectProblem(await create(newConnection({ record2objecttypecode: 'starship' })), 400, 'UnknownObjectType');
  });

  it('refuses dates outside 0001-01-01..9999-12-31 in UTC, and stores every date as a normalised UTC date-time', async () => {
    const body = newConnection({ effectivestart: '9999-12-31T23:59:59-23:59', effectiveend: '2024-01-01' });
    const refused = await create(body);
    expectProblem(refused, 400, 'ValidationFailed');
    expect(refused.body.errors.map((error: { field: string }) => error.field)).toEqual(['effectivestart']);
    expectProblem(
      await create(newConnection({ effectivestart: '2024-01-01', effectiveend: '9999-12-31T23:59:59-23:59' })),
      400,
      'ValidationFailed',
    );
    expect((await call(`${api.baseUrl}/records/${body.record1id}/connections`, asAda)).body.value).toEqual([]);
    const created = await create(
      newConnection({ effectivestart: '0001-01-01T01:00:00+01:00', effectiveend: '9999-12-31T23:59:59.999Z' }),
    );
    expect(created.status).toBe(201);
    expect([created.body.effectivestart, created.body.effectiveend]).toEqual([
      '0001-01-01T00:00:00.000Z',
      '9999-12-31T23:59:59.999Z',
    ]);
  });

  it('accepts object types by code or logical name, in any case', async () => {
    const created = await create(newConnection({ record1objecttypecode: 'SystemUser', record2objecttypecode: '9' }));
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      record1objecttypecode: 8,
      record1objecttypename: 'systemuser',
      record2objecttypecode: 9,
      record2objecttypename: 'team',
    });
  });

  it('answers bad input with a 4xx problem and writes nothing', async () => {
    const body = newConnection();
    const url = `${api.baseUrl}/connections`;
    expectProblem(
      await call(url, {
        method: 'POST',
        headers: { ...ada, 'content-type': 'application/json' },
        rawBody: '{"record1id": ',
      }),
      400,
      'MalformedJson',
    );
    expectProblem(
      await call(url, {
        method: 'POST',
        headers: { ...ada, 'content-type': 'text/plain' },
        rawBody: JSON.stringify(body),
      }),
      415,
    );
    expectProblem(await call(url, { method: 'POST', headers: ada, rawBody: JSON.stringify(body) }), 415);
    const unknown = await create({ ...body, favouritecolour: 'teal' });
    expectProblem(unknown, 400, 'ValidationFailed');
    expect(unknown.body.errors[0].message).toContain('favouritecolour');
    const wrongTypes = await create({ ...body, record1id: 42, description: ['x'] });
    expectProblem(wrongTypes, 400);
    expect(wrongTypes.body.errors.map((error: { field: string }) => error.field).sort()).toEqual([
      'description',
      'record1id',
    ]);
    expectProblem(await create({ ...body, description: 'x'.repeat(70_000) }), 413, 'PayloadTooLarge');
    expectProblem(await create({ ...body, description: 'x'.repeat(2001) }), 400);
    expectProblem(
      await call(url, { method: 'POST', headers: { ...ada, 'content-type': 'application/json' }, rawBody: '[]' }),
      400,
    );
    expectProblem(
      await call(url, { method: 'POST', headers: { ...ada, 'content-type': 'application/json' }, rawBody: 'null' }),
      400,
    );
    expect((await call(`${api.baseUrl}/records/${body.record1id}/connections`, asAda)).body.value).toEqual([]);
  });
});

describe('reading, changing and deleting one connection', () => {
  it('GET returns one half with its ETag, 404 when absent, 400 for a bad GUID', async () => {
    const created = await create(newConnection());
    const reciprocal = await call(
      `${api.baseUrl}/records/${created.body.record2id}/connections/${created.body.relatedconnectionid}`,
      asAda,
    );
    expect(reciprocal.status).toBe(200);
    expect(reciprocal.headers.get('etag')).toBe(created.headers.get('etag'));
    expectProblem(
      await call(`${api.baseUrl}/records/${created.body.record1id}/connections/${randomUUID()}`, asAda),
      404,
      'ConnectionNotFound',
    );
    expectProblem(await call(`${api.baseUrl}/records/${created.body.record1id}/connections/not-a-guid`, asAda), 400);
    expectProblem(await call(`${api.baseUrl}/records/x%2Fy/connections`, asAda), 400);
  });

  it('PATCH changes both halves, honours If-Match and refuses changes to an inactive connection', async () => {
    const created = await create(newConnection());
    const masterUrl = `${api.baseUrl}/records/${created.body.record1id}/connections/${created.body.connectionid}`;
    const reciprocalUrl = `${api.baseUrl}/records/${created.body.record2id}/connections/${created.body.relatedconnectionid}`;
    const etag = created.headers.get('etag') ?? '';

    const updated = await call(reciprocalUrl, {
      method: 'PATCH',
      headers: { ...ada, 'if-match': etag },
      body: { description: 'Renewed', effectiveend: '2027-12-31T00:00:00Z' },
    });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({
      connectionid: created.body.relatedconnectionid,
      description: 'Renewed',
      versionnumber: 2,
    });
    expect(updated.headers.get('etag')).not.toBe(etag);
    expect((await call(masterUrl, asAda)).body).toMatchObject({
      description: 'Renewed',
      effectiveend: '2027-12-31T00:00:00.000Z',
      versionnumber: 2,
    });

    expectProblem(
      await call(masterUrl, {
        method: 'PATCH',
        headers: { ...ada, 'if-match': etag },
        body: { description: 'lost update' },
      }),
      412,
      'PreconditionFailed',
    );

    const deactivated = await call(masterUrl, { method: 'PATCH', headers: ada, body: { statecode: 1 } });
    expect(deactivated.body).toMatchObject({ statecode: 1, statuscode: 2 });
    expectProblem(
      await call(reciprocalUrl, { method: 'PATCH', headers: ada, body: { description: 'x' } }),
      409,
      'ConnectionInactive',
    );
    const again = await call(reciprocalUrl, { method: 'PATCH', headers: ada, body: { statecode: 1 } });
    expect(again.status).toBe(200); // deactivating twice changes nothing, so a retried deactivation is safe
    expect(again.body.versionnumber).toBe(deactivated.body.versionnumber);
    const reactivated = await call(reciprocalUrl, {
      method: 'PATCH',
      headers: ada,
      body: { statecode: 0, statuscode: 1 },
    });
    expect(reactivated.body).toMatchObject({ statecode: 0, statuscode: 1 });

    expectProblem(await call(masterUrl, { method: 'PATCH', headers: ada, body: {} }), 400);
    expectProblem(await call(masterUrl, { method: 'PATCH', headers: ada, body: { record2id: randomUUID() } }), 400);
    expectProblem(await call(masterUrl, { method: 'PATCH', headers: ada, body: { statecode: 0, statuscode: 2 } }), 400);
    expectProblem(
      await call(masterUrl, { method: 'PATCH', headers: ada, body: { effectivestart: '2028-01-01' } }),
      400,
      'ConnectionInvalidStartEndDate',
    );
  });

  it('DELETE removes both halves (204, then 404 from either record)', async () => {
    const created = await create(newConnection());
    const masterUrl = `${api.baseUrl}/records/${created.body.record1id}/connections/${created.body.connectionid}`;
    const reciprocalUrl = `${api.baseUrl}/records/${created.body.record2id}/connections/${created.body.relatedconnectionid}`;
    const deleted = await call(masterUrl, { method: 'DELETE', headers: ada });
    expect(deleted.status).toBe(204);
    expectProblem(await call(masterUrl, asAda), 404);
    expectProblem(await call(reciprocalUrl, asAda), 404);
    expectProblem(await call(reciprocalUrl, { method: 'DELETE', headers: ada }), 404);
  });
});

describe('GET /api/records/{recordid}/connections', () => {
  const hub = randomUUID();
  beforeAll(async () => {
    for (let index = 0; index < 7; index++) {
      const body =
        index % 2
          ? newConnection({ record1id: hub })
          : newConnection({ record2id: hub, record1objecttypecode: 'team' });
      expect((await create(body)).status).toBe(201);
    }
  });

  it('pages with top and an absolute nextLink that works as given', async () => {
    const seen = new Set<string>();
    let url: string | undefined = `${api.baseUrl}/records/${hub}/connections?top=3`;
    let pages = 0;
    while (url) {
      const page: { status: number; body: LooseJson } = await call(url, asAda);
      expect(page.status).toBe(200);
      for (const half of page.body.value) {
        expect(half.record1id).toBe(hub);
        seen.add(half.connectionid);
      }
      url = page.body.nextLink;
      if (url) expect(url.startsWith(`${api.baseUrl}/records/${hub}/connections?`)).toBe(true);
      pages++;
    }
    expect(seen.size).toBe(7);
    expect(pages).toBe(3);
  });

  it("filters by the other side's type, the state and a date", async () => {
    const byType = await call(`${api.baseUrl}/records/${hub}/connections?othertypecode=team`, asAda);
    expect(byType.body.value).toHaveLength(4);
    expect((await call(`${api.baseUrl}/records/${hub}/connections?othertypecode=2`, asAda)).body.value).toHaveLength(3);
    expect((await call(`${api.baseUrl}/records/${hub}/connections?statecode=1`, asAda)).body.value).toHaveLength(0);
    expect(
      (await call(`${api.baseUrl}/records/${hub}/connections?activeon=2026-11-23`, asAda)).body.value,
    ).toHaveLength(7);
    const other = byType.body.value[0].record2id;
    expect(
      (await call(`${api.baseUrl}/records/${hub}/connections?otherrecordid=${other}`, asAda)).body.value,
    ).toHaveLength(1);
  });

  it('takes activeon with an offset, written as a browser would or percent-encoded, and finds open-ended connections', async () => {
    const record = randomUUID();
    await create(newConnection({ record1id: record }));
    await create(newConnection({ record1id: record, effectivestart: '2026-05-31T23:00:00Z' }));
    await create(newConnection({ record1id: record, effectiveend: '2026-05-31T21:59:59Z' }));
    const base = `${api.baseUrl}/records/${record}/connections`;
    // 2026-06-01T00:00:00+02:00 is 2026-05-31T22:00:00Z: in effect are the open one and the one not ended yet.
    for (const activeon of ['2026-06-01T00:00:00+02:00', '2026-06-01T00:00:00%2B02:00', '2026-05-31T20:00:00-02:00']) {
      const listed = await call(`${base}?activeon=${activeon}`, asAda);
      expect(listed.status, activeon).toBe(200);
      expect(
        listed.body.value.map((half: { effectivestart: string | null; effectiveend: string | null }) => [
          half.effectivestart,
          half.effectiveend,
        ]),
        activeon,
      ).toEqual([[null, null]]);
    }
    expectProblem(await call(`${base}?activeon=0001-01-01T00:00:00%2B01:00`, asAda), 400, 'ValidationFailed');
    expectProblem(await call(`${base}?activeon=9999-12-31T23:59:59-00:01`, asAda), 400, 'ValidationFailed');
  });

  it('refuses bad query values and forged skiptokens with 400', async () => {
    const base = `${api.baseUrl}/records/${hub}/connections`;
    for (const query of [
      'top=0',
      'top=1001',
      'top=ten',
      'statecode=2',
      'activeon=soon',
      'othertypecode=starship',
      'otherrecordid=x',
      'colour=red',
      'skiptoken=garbage',
      'skiptoken=eyJ2IjoxfQ',
    ]) {
      expectProblem(await call(`${base}?${query}`, asAda), 400);
    }
    const first = await call(`${base}?top=2`, asAda);
    const token = new URL(first.body.nextLink).searchParams.get('skiptoken') ?? '';
    expectProblem(await call(`${base}?top=2&statecode=0&skiptoken=${token}`, asAda), 400, 'InvalidSkipToken');
    expectProblem(
      await call(`${api.baseUrl}/records/${randomUUID()}/connections?skiptoken=${token}`, asAda),
      400,
      'InvalidSkipToken',
    );
  });

  it('DELETE removes every connection of the record and returns the count', async () => {
    const record = randomUUID();
    const partners: string[] = [];
    for (let index = 0; index < 5; index++) {
      const body = newConnection(index % 2 ? { record1id: record } : { record2id: record });
      partners.push(index % 2 ? body.record2id : body.record1id);
      await create(body);
    }
    expect(
      (await call(`${api.baseUrl}/records/${record}/connections`, { method: 'DELETE', headers: ada })).status,
    ).toBe(403);
    const admin = principal('ad000000-0000-4000-8000-0000000000ad', { roles: ['Connections.Admin'] });
    const deleted = await call(`${api.baseUrl}/records/${record}/connections`, { method: 'DELETE', headers: admin });
    expect(deleted.status).toBe(200);
    expect(deleted.body).toEqual({ recordid: record, deleted: 5 });
    expect((await call(`${api.baseUrl}/records/${record}/connections`, asAda)).body.value).toEqual([]);
    for (const partner of partners)
      expect((await call(`${api.baseUrl}/records/${partner}/connections`, asAda)).body.value).toEqual([]);
  });
});

describe('the caller', () => {
  it('is required on every endpoint but /health', async () => {
    const health = await call(`${api.baseUrl}/health`);
    expect(health.status).toBe(200);
    const record = randomUUID();
    const id = randomUUID();
    for (const [method, path] of [
      ['POST', '/connections'],
      ['GET', `/records/${record}/connections`],
      ['DELETE', `/records/${record}/connections`],
      ['GET', `/records/${record}/connections/${id}`],
      ['PATCH', `/records/${record}/connections/${id}`],
      ['DELETE', `/records/${record}/connections/${id}`],
      ['GET', '/objecttypes'],
    ] as const) {
      expectProblem(await call(`${api.baseUrl}${path}`, { method }), 401, 'Unauthenticated');
      expectProblem(
        await call(`${api.baseUrl}${path}`, { method, headers: { 'x-ms-client-principal': 'bm9wZQ==' } }),
        401,
      );
    }
  });
});

describe('the host', () => {
  it('answers unknown routes with 404 and wrong methods with 405, as problems', async () => {
    expectProblem(await call(`${api.baseUrl}/nothing-here`, asAda), 404, 'RouteNotFound');
    const wrongMethod = await call(`${api.baseUrl}/connections`, { method: 'PUT', headers: ada, body: {} });
    expectProblem(wrongMethod, 405);
    expect(wrongMethod.headers.get('allow')).toBe('POST, GET');
  });

  it('refuses query parameters on routes that take none, as list routes refuse unknown ones', async () => {
    const created = await create(newConnection());
    expectProblem(
      await call(
        `${api.baseUrl}/records/${created.body.record1id}/connections/${created.body.connectionid}?colour=red`,
        asAda,
      ),
      400,
      'ValidationFailed',
    );
    expectProblem(await call(`${api.baseUrl}/objecttypes?%EF%BF%BD=1`, asAda), 400, 'ValidationFailed');
    expectProblem(
      await call(
        `${api.baseUrl}/records/${created.body.record1id}/connections/${created.body.connectionid}?statecode=1`,
        { method: 'DELETE', headers: ada },
      ),
      400,
    );
    expect(
      (await call(`${api.baseUrl}/records/${created.body.record1id}/connections/${created.body.connectionid}`, asAda))
        .status,
    ).toBe(200);
  });

  it('lists the object types it knows', async () => {
    const types = await call(`${api.baseUrl}/objecttypes`, asAda);
    expect(types.body.value).toContainEqual({ objecttypecode: 1, objecttypename: 'account' });
    expect(types.body.value).toContainEqual({ objecttypecode: 4201, objecttypename: 'appointment' });
  });
});

describe('GET /api/records/{recordid}/connections/{connectionid}/audit', () => {
  it('lists the changes newest first with nextLink, through either record, and 404 to a stranger', async () => {
    const created = await create(newConnection());
    const { record1id, connectionid, record2id, relatedconnectionid } = created.body;
    const url = `${api.baseUrl}/records/${record1id}/connections/${connectionid}`;
    await call(url, { method: 'PATCH', headers: ada, body: { description: 'met at a fair' } });
    const first = await call(`${url}/audit?top=1`, asAda);
    expect(first.status).toBe(200);
    expect(first.body.value).toEqual([
      {
        operation: 'update',
        userid: 'ada00000-0000-4000-8000-00000000000a',
        createdon: expect.any(String),
        versionnumber: 2,
        changes: [{ attribute: 'description', oldvalue: null, newvalue: 'met at a fair' }],
      },
    ]);
    const second = await call(first.body.nextLink, asAda);
    expect(second.body.value.map((record: { operation: string }) => record.operation)).toEqual(['create']);
    expect(second.body.nextLink).toBeUndefined();
    const fromOther = await call(`${api.baseUrl}/records/${record2id}/connections/${relatedconnectionid}/audit`, asAda);
    expect(fromOther.body.value).toHaveLength(2);
    expectProblem(await call(`${url}/audit`, { headers: principal(randomUUID()) }), 404, 'ConnectionNotFound');
    expectProblem(await call(`${url}/audit?top=0`, asAda), 400);
  });
});

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LooseJson } from '../support/json';
import { call, principal, startApi, type TestApi } from '../support/http';

let api: TestApi;
const owner = principal('c0c00000-0000-4000-8000-0000000000c1');
beforeAll(async () => {
  api = await startApi();
});
afterAll(async () => api.close());

async function createOne(): Promise<{ master: string; reciprocal: string; body: LooseJson; etag: string }> {
  const created = await call(`${api.baseUrl}/connections`, {
    method: 'POST',
    headers: owner,
    body: {
      record1id: randomUUID(),
      record1objecttypecode: 'account',
      record2id: randomUUID(),
      record2objecttypecode: 'contact',
    },
  });
  return {
    master: `${api.baseUrl}/records/${created.body.record1id}/connections/${created.body.connectionid}`,
    reciprocal: `${api.baseUrl}/records/${created.body.record2id}/connections/${created.body.relatedconnectionid}`,
    body: created.body,
    etag: created.headers.get('etag') ?? '',
  };
}

describe('concurrent requests', () => {
  it('50 parallel updates all land, in sequence, and the halves agree', async () => {
    const { master, reciprocal } = await createOne();
    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, index) =>
        call(index % 2 ? master : reciprocal, {
          method: 'PATCH',
          headers: owner,
          body: { description: `update ${index}` },
        }),
      ),
    );
    expect(responses.map((response) => response.status)).toEqual(Array(50).fill(200));
    expect(new Set(responses.map((response) => response.body.versionnumber)).size).toBe(50);
    const [first, second] = [await call(master, { headers: owner }), await call(reciprocal, { headers: owner })];
    expect(first.body.versionnumber).toBe(51);
    expect(second.body).toMatchObject({ versionnumber: 51, description: first.body.description });
  });

  it('50 parallel updates with the same If-Match: exactly one wins, the rest get 412', async () => {
    const { master, reciprocal, etag } = await createOne();
    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, index) =>
        call(index % 2 ? master : reciprocal, {
          method: 'PATCH',
          headers: { ...owner, 'if-match': etag },
          body: { description: `update ${index}` },
        }),
      ),
    );
    const statuses = responses.map((response) => response.status);
    expect(statuses.filter((status) => status === 200)).toHaveLength(1);
    expect(statuses.filter((status) => status === 412)).toHaveLength(49);
    const winner = responses.find((response) => response.status === 200)?.body.description;
    expect((await call(reciprocal, { headers: owner })).body.description).toBe(winner);
    expect((await call(master, { headers: owner })).body.description).toBe(winner);
  });

  it('20 parallel creates of the same pair make one connection; the rest get 409 naming it', async () => {
    const body = {
      record1id: randomUUID(),
      record1objecttypecode: 'account',
      record2id: randomUUID(),
      record2objecttypecode: 'contact',
    };
    const responses = await Promise.all(
      Array.from({ length: 20 }, () => call(`${api.baseUrl}/connections`, { method: 'POST', headers: owner, body })),
    );
    const created = responses.filter((response) => response.status === 201);
    expect(created).toHaveLength(1);
    for (const response of responses.filter((candidate) => candidate.status !== 201)) {
      expect(response.status).toBe(409);
      expect(response.body).toMatchObject({
        code: 'ConnectionExists',
        existingconnectionid: created[0]?.body.connectionid,
      });
    }
    expect(
      (await call(`${api.baseUrl}/records/${body.record2id}/connections`, { headers: owner })).body.value,
    ).toHaveLength(1);
  });

  it('parallel grants and revokes leave the same shares on both halves', async () => {
    const { master, reciprocal } = await createOne();
    const principals = Array.from({ length: 12 }, () => randomUUID());
    await Promise.all(
      principals.map((principalid, index) =>
        call(`${index % 2 ? master : reciprocal}/access`, {
          method: 'POST',
          headers: owner,
          body: { principalid, principaltype: 'systemuser', accessmask: 'ReadAccess' },
        }),
      ),
    );
    const responses = await Promise.all([
      ...principals
        .slice(0, 6)
        .map((principalid, index) =>
          call(`${index % 2 ? reciprocal : master}/access/${principalid}`, { method: 'DELETE', headers: owner }),
        ),
      ...principals.slice(6).map((principalid) =>
        call(`${reciprocal}/access`, {
          method: 'POST',
          headers: owner,
          body: { principalid, principaltype: 'systemuser', accessmask: 'WriteAccess' },
        }),
      ),
    ]);
    expect(responses.every((response) => response.status === 200 || response.status === 204)).toBe(true);
    const fromMaster = (await call(`${master}/access`, { headers: owner })).body.value;
    const fromReciprocal = (await call(`${reciprocal}/access`, { headers: owner })).body.value;
    expect(fromReciprocal).toEqual(fromMaster);
    expect(fromMaster.map((share: { principalid: string }) => share.principalid).sort()).toEqual(
      principals.slice(6).sort(),
    );
    expect(fromMaster.every((share: { accessmask: number }) => share.accessmask === 3)).toBe(true);
  });
});

describe('concurrent role changes', () => {
  const admin = principal('c0c00000-0000-4000-8000-0000000000ad', { roles: ['Connections.Admin'] });
  const newRole = async (): Promise<{ url: string; etag: string }> => {
    const created = await call(`${api.baseUrl}/connectionroles`, {
      method: 'POST',
      headers: admin,
      body: { name: `Busy ${randomUUID().slice(0, 8)}` },
    });
    expect(created.status).toBe(201);
    return {
      url: `${api.baseUrl}/connectionroles/${created.body.connectionroleid}`,
      etag: created.headers.get('etag') ?? '',
    };
  };

  it('20 parallel PATCHes without If-Match all land, last writer wins, each a version of its own', async () => {
    const { url } = await newRole();
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        call(url, { method: 'PATCH', headers: admin, body: { description: `change ${index}` } }),
      ),
    );
    expect(responses.map((response) => response.status)).toEqual(Array(20).fill(200));
    expect(responses.map((response) => response.body.versionnumber).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 20 }, (_, index) => index + 2),
    );
    const last = responses.find((response) => response.body.versionnumber === 21);
    expect((await call(url, { headers: admin })).body).toMatchObject({
      versionnumber: 21,
      description: last?.body.description,
    });
  });

  it('20 parallel PATCHes with the same If-Match: exactly one wins, the rest get 412', async () => {
    const { url, etag } = await newRole();
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        call(url, {
          method: 'PATCH',
          headers: { ...admin, 'if-match': etag },
          body: { description: `change ${index}` },
        }),
      ),
    );
    const statuses = responses.map((response) => response.status);
    expect(statuses.filter((status) => status === 200)).toHaveLength(1);
    expect(statuses.filter((status) => status === 412)).toHaveLength(19);
    expect((await call(url, { headers: admin })).body.versionnumber).toBe(2);
  });
});

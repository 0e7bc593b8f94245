import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LooseJson } from '../support/json';
import { call, principal, startApi, type TestApi } from '../support/http';

/**
 * Skiptokens as an attacker sees them: made by hand, edited, replayed elsewhere, or signed with a key
 * that was rotated out. Each is a 400 InvalidSkipToken, never a 500 and never rows of another query.
 */
let api: TestApi;
const owner = principal('0e000000-0000-4000-8000-00000000000e');
const admin = principal('0e000000-0000-4000-8000-0000000000ad', { roles: ['Connections.Admin'] });
const keyA = randomBytes(32).toString('base64');
const keyB = randomBytes(32).toString('base64');
const hub = randomUUID();
let roleId = '';

beforeAll(async () => {
  api = await startApi({ SKIPTOKEN_KEYS: keyA });
  const role = await call(`${api.baseUrl}/connectionroles`, {
    method: 'POST',
    headers: admin,
    body: { name: 'Partner', category: 1, objecttypecodes: ['account', 'contact'] },
  });
  roleId = role.body.connectionroleid;
  await call(`${api.baseUrl}/connectionroles/${roleId}/matchingroles/${roleId}`, { method: 'PUT', headers: admin });
  // The hub (an account) is a partner of five contacts: made from either side, so both kinds of index entry exist.
  for (const fromHub of [true, true, false, false, false]) {
    const [record1, record2] = fromHub
      ? [
          { id: hub, type: 'account' },
          { id: randomUUID(), type: 'contact' },
        ]
      : [
          { id: randomUUID(), type: 'contact' },
          { id: hub, type: 'account' },
        ];
    const created = await call(`${api.baseUrl}/connections`, {
      method: 'POST',
      headers: owner,
      body: {
        record1id: record1.id,
        record1objecttypecode: record1.type,
        record1roleid: roleId,
        record2id: record2.id,
        record2objecttypecode: record2.type,
        record2roleid: roleId,
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
  }
});
afterAll(async () => api.close());

/** A token in the format the first version used: anyone could make one, the fingerprint being a plain hash. */
const forged = (scope: string, query: object, position: string): string => {
  const fingerprint = createHash('sha256').update(JSON.stringify(query)).digest('base64url').slice(0, 16);
  return Buffer.from(JSON.stringify({ v: 1, s: scope, q: fingerprint, p: position })).toString('base64url');
};

const expectInvalidToken = (response: { status: number; headers: Headers; body: LooseJson }) => {
  expect(response.status, JSON.stringify(response.body)).toBe(400);
  expect(response.headers.get('content-type')).toContain('application/problem+json');
  expect(response.body.code).toBe('InvalidSkipToken');
};

const tokenOf = (nextLink: string): string => new URL(nextLink).searchParams.get('skiptoken') ?? '';

describe('a skiptoken made by hand', () => {
  it("with a lone surrogate as its position is a 400, on a record's list and on a role query", async () => {
    expectInvalidToken(
      await call(`${api.baseUrl}/records/${hub}/connections?skiptoken=${forged(hub, { recordId: hub }, '\ud800')}`, {
        headers: owner,
      }),
    );
    expectInvalidToken(
      await call(`${api.baseUrl}/connections?roleid=${roleId}&skiptoken=${forged(roleId, { roleId }, '\ud800')}`, {
        headers: owner,
      }),
    );
  });

  it('cannot move a role query outside its own key range (no account rows in a query for contacts)', async () => {
    const contacts = await call(`${api.baseUrl}/connections?roleid=${roleId}&typecode=contact`, { headers: owner });
    expect(contacts.body.value.map((half: { record1objecttypecode: number }) => half.record1objecttypecode)).toEqual([
      2, 2, 2, 2, 2,
    ]);
    expectInvalidToken(
      await call(
        `${api.baseUrl}/connections?roleid=${roleId}&typecode=contact&skiptoken=${forged(roleId, { roleId, typeCode: 2 }, '0')}`,
        { headers: owner },
      ),
    );
  });

  it('edited in any byte is a 400', async () => {
    const first = await call(`${api.baseUrl}/records/${hub}/connections?top=1`, { headers: owner });
    const token = tokenOf(first.body.nextLink);
    const bytes = Buffer.from(token, 'base64url');
    for (let index = 0; index < bytes.length; index++) {
      const edited = Buffer.from(bytes);
      edited[index] = (edited[index] ?? 0) ^ 0x01;
      expectInvalidToken(
        await call(`${api.baseUrl}/records/${hub}/connections?top=1&skiptoken=${edited.toString('base64url')}`, {
          headers: owner,
        }),
      );
    }
  });

  it('tells nothing of where it points (the position is not readable in it)', async () => {
    const first = await call(`${api.baseUrl}/records/${hub}/connections?top=1`, { headers: owner });
    const decoded = Buffer.from(tokenOf(first.body.nextLink), 'base64url').toString('latin1');
    expect(decoded).not.toContain(first.body.value[0].connectionid);
    expect(decoded).not.toContain('c_');
  });
});

describe('rotating the signing keys', () => {
  it('keeps nextLinks in flight working while the old key is still listed, and refuses them once it is gone', async () => {
    const first = await call(`${api.baseUrl}/records/${hub}/connections?top=2`, { headers: owner });
    expect(first.body.value).toHaveLength(2);
    process.env.SKIPTOKEN_KEYS = `${keyB},${keyA}`; // B signs from now on; A still verifies
    const second = await call(first.body.nextLink, { headers: owner });
    expect(second.status).toBe(200);
    expect(second.body.value).toHaveLength(2);
    process.env.SKIPTOKEN_KEYS = keyB; // A retired
    expectInvalidToken(await call(first.body.nextLink, { headers: owner }));
    const third = await call(second.body.nextLink, { headers: owner });
    expect(third.status).toBe(200);
    expect(third.body.value).toHaveLength(1);
    const ids = [...first.body.value, ...second.body.value, ...third.body.value].map(
      (half: { connectionid: string }) => half.connectionid,
    );
    expect(new Set(ids).size).toBe(5);
  });
});

import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createServices, type Services } from '../../shared/services';
import { readSettings } from '../../shared/settings';
import { type FaultProxy, startFaultProxy } from '../../scripts/faultProxy';
import { call, principal, startApi, type TestApi } from '../support/http';
import { uniqueTableName } from '../support/storage';

/**
 * Model-based test: random sequences of creates, updates, state changes, role changes, deletes, grants
 * and revokes from several callers run against the real API, with storage failures injected under it.
 * A request answered 503 is retried as a client must (same connectionid, same body). After each run the
 * repair job runs, the checker must find nothing, and every API answer must equal the model's.
 */
let proxy: FaultProxy;
let api: TestApi;
let services: Services;
let friend: string;
const prefix = uniqueTableName('model');
const admin = principal('ad000000-0000-4000-8000-00000000a0a0', { roles: ['Connections.Admin'] });
const users = ['00000000-0000-4000-8000-0000000000a1', '00000000-0000-4000-8000-0000000000a2', '00000000-0000-4000-8000-0000000000a3'];
const team = '7ea00000-0000-4000-8000-0000000000aa';
const types = ['account', 'contact', 'contact', 'systemuser'];

beforeAll(async () => {
  proxy = await startFaultProxy(inject('azuriteConnectionString'));
  api = await startApi({ DataTables__connectionString: proxy.connectionString, TABLE_NAME_PREFIX: prefix });
  services = createServices(readSettings({ DataTables__connectionString: inject('azuriteConnectionString'), TABLE_NAME_PREFIX: prefix }));
  const role = await call(`${api.baseUrl}/connectionroles`, { method: 'POST', headers: admin, body: { name: 'Friend', category: 3 } });
  friend = role.body.connectionroleid;
  await call(`${api.baseUrl}/connectionroles/${friend}/matchingroles/${friend}`, { method: 'PUT', headers: admin });
});
afterAll(async () => {
  await api.close();
  await proxy.close();
});

interface ModelConnection {
  id: string;
  twinId: string;
  r1: number;
  r2: number;
  owner: number;
  description: string | null;
  state: 0 | 1;
  role: boolean;
  shares: Map<string, number>;
}

type Fault = { action: 'fail' | 'cut' | 'cut-after'; skip: number; times: number } | null;
type Op =
  | { kind: 'create'; r1: number; r2: number; owner: number; role: boolean; description: string }
  | { kind: 'update'; pick: number; viaTwin: boolean; description: string }
  | { kind: 'state'; pick: number; viaTwin: boolean; state: 0 | 1 }
  | { kind: 'role'; pick: number; role: boolean }
  | { kind: 'delete'; pick: number; viaTwin: boolean }
  | { kind: 'grant'; pick: number; principal: number; mask: number }
  | { kind: 'revoke'; pick: number; principal: number };

const record = fc.integer({ min: 0, max: 3 });
const pick = fc.nat();
const opArbitrary: fc.Arbitrary<{ op: Op; fault: Fault }> = fc.record({
  op: fc.oneof(
    fc.record({ kind: fc.constant('create' as const), r1: record, r2: record, owner: fc.integer({ min: 0, max: 2 }), role: fc.boolean(), description: fc.string({ maxLength: 12 }) }),
    fc.record({ kind: fc.constant('update' as const), pick, viaTwin: fc.boolean(), description: fc.string({ maxLength: 12 }) }),
    fc.record({ kind: fc.constant('state' as const), pick, viaTwin: fc.boolean(), state: fc.constantFrom(0 as const, 1 as const) }),
    fc.record({ kind: fc.constant('role' as const), pick, role: fc.boolean() }),
    fc.record({ kind: fc.constant('delete' as const), pick, viaTwin: fc.boolean() }),
    fc.record({ kind: fc.constant('grant' as const), pick, principal: fc.integer({ min: 0, max: 3 }), mask: fc.constantFrom(1, 3, 65537, 262145) }),
    fc.record({ kind: fc.constant('revoke' as const), pick, principal: fc.integer({ min: 0, max: 3 }) }),
  ),
  fault: fc.option(fc.record({ action: fc.constantFrom('fail' as const, 'cut' as const, 'cut-after' as const), skip: fc.integer({ min: 0, max: 4 }), times: fc.integer({ min: 1, max: 6 }) }), { freq: 2 }),
});

const principalOf = (index: number): { id: string; type: 'systemuser' | 'team' } =>
  index < users.length ? { id: users[index] as string, type: 'systemuser' } : { id: team, type: 'team' };

/** Sends a request, retrying 503s as a client must; returns the final status and whether a retry happened. */
async function send(url: string, init: Parameters<typeof call>[1]): Promise<{ status: number; body: any; retried: boolean }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const response = await call(url, init);
    if (response.status !== 503) return { ...response, retried: attempt > 0 };
    if (response.headers.get('content-type')?.includes('application/problem+json') !== true) throw new Error('503 without a problem');
  }
  throw new Error('still 503 after 20 attempts');
}

function activeKeyTaken(model: Map<string, ModelConnection>, candidate: { r1: number; r2: number; role: boolean; id: string }, records: string[]): boolean {
  return [...model.values()].some((other) => other.id !== candidate.id && other.state === 0 && other.role === candidate.role &&
    ((records[other.r1] === records[candidate.r1] && records[other.r2] === records[candidate.r2]) ||
      (records[other.r1] === records[candidate.r2] && records[other.r2] === records[candidate.r1])));
}

async function run(ops: { op: Op; fault: Fault }[]): Promise<void> {
  const records = types.map(() => randomUUID());
  const model = new Map<string, ModelConnection>();
  const urlOf = (connection: ModelConnection, viaTwin: boolean) => viaTwin
    ? `${api.baseUrl}/records/${records[connection.r2]}/connections/${connection.twinId}`
    : `${api.baseUrl}/records/${records[connection.r1]}/connections/${connection.id}`;
  const ownerHeaders = (connection: ModelConnection) => principal(users[connection.owner] as string);

  for (const { op, fault } of ops) {
    const existing = [...model.values()];
    const target = 'pick' in op && existing.length > 0 ? existing[op.pick % existing.length] : undefined;
    if (op.kind !== 'create' && !target) continue;
    if (op.kind === 'create' && op.r1 === op.r2) continue;
    proxy.clear();
    if (fault) proxy.add({ match: () => true, ...fault });

    switch (op.kind) {
      case 'create': {
        const id = randomUUID();
        const body = {
          connectionid: id, record1id: records[op.r1], record1objecttypecode: types[op.r1], record2id: records[op.r2], record2objecttypecode: types[op.r2],
          description: op.description, ...(op.role && { record1roleid: friend }),
        };
        const response = await send(`${api.baseUrl}/connections`, { method: 'POST', headers: principal(users[op.owner] as string), body });
        const candidate = { id, r1: op.r1, r2: op.r2, role: op.role };
        if (activeKeyTaken(model, candidate, records)) {
          expect(response.status, JSON.stringify(response.body)).toBe(409);
          expect(response.body.code).toBe('ConnectionExists');
        } else {
          expect([200, 201], `${JSON.stringify(response.body)} retried ${response.retried}`).toContain(response.status);
          model.set(id, { ...candidate, twinId: response.body.relatedconnectionid, owner: op.owner, description: op.description, state: 0, shares: new Map() });
        }
        break;
      }
      case 'update': {
        const connection = target as ModelConnection;
        const response = await send(urlOf(connection, op.viaTwin), { method: 'PATCH', headers: ownerHeaders(connection), body: { description: op.description } });
        if (connection.state === 1) expect(response.status).toBe(409);
        else {
          expect(response.status, JSON.stringify(response.body)).toBe(200);
          connection.description = op.description;
        }
        break;
      }
      case 'state': {
        const connection = target as ModelConnection;
        const response = await send(urlOf(connection, op.viaTwin), { method: 'PATCH', headers: ownerHeaders(connection), body: { statecode: op.state } });
        if (op.state === 1) {
          // Deactivation is idempotent: an inactive connection stays as it is.
          expect(response.status, JSON.stringify(response.body)).toBe(200);
          connection.state = 1;
        } else if (connection.state === 1 && activeKeyTaken(model, connection, records)) {
          expect(response.status).toBe(409);
          expect(response.body.code).toBe('ConnectionExists');
        } else {
          expect(response.status, JSON.stringify(response.body)).toBe(200);
          connection.state = 0;
        }
        break;
      }
      case 'role': {
        const connection = target as ModelConnection;
        const roleId = op.role ? friend : null;
        const response = await send(urlOf(connection, false), { method: 'PATCH', headers: ownerHeaders(connection), body: { record1roleid: roleId, record2roleid: roleId } });
        if (connection.state === 1) expect(response.status).toBe(409);
        else if (connection.role !== op.role && activeKeyTaken(model, { ...connection, role: op.role }, records)) {
          expect(response.status).toBe(409);
        } else {
          expect(response.status, JSON.stringify(response.body)).toBe(200);
          connection.role = op.role;
        }
        break;
      }
      case 'delete': {
        const connection = target as ModelConnection;
        const response = await send(urlOf(connection, op.viaTwin), { method: 'DELETE', headers: ownerHeaders(connection) });
        expect(response.retried ? [204, 404] : [204]).toContain(response.status);
        model.delete(connection.id);
        break;
      }
      case 'grant': {
        const connection = target as ModelConnection;
        const { id, type } = principalOf(op.principal);
        const response = await send(`${urlOf(connection, false)}/access`, { method: 'POST', headers: ownerHeaders(connection), body: { principalid: id, principaltype: type, accessmask: op.mask } });
        expect(response.status, JSON.stringify(response.body)).toBe(200);
        connection.shares.set(id, (connection.shares.get(id) ?? 0) | op.mask);
        break;
      }
      case 'revoke': {
        const connection = target as ModelConnection;
        const { id } = principalOf(op.principal);
        const response = await send(`${urlOf(connection, true)}/access/${id}`, { method: 'DELETE', headers: ownerHeaders(connection) });
        expect(response.status).toBe(204);
        connection.shares.delete(id);
        break;
      }
    }
  }
  proxy.clear();

  await services.consistency.walk({ repair: true, graceMs: 0 });
  expect((await services.consistency.walk({ repair: false, graceMs: 0 })).violations).toEqual([]);

  for (const connection of model.values()) {
    const master = await call(urlOf(connection, false), { headers: admin });
    expect(master.status).toBe(200);
    expect(master.body).toMatchObject({
      record1id: records[connection.r1], record2id: records[connection.r2], description: connection.description, statecode: connection.state,
      record1roleid: connection.role ? friend : null, record2roleid: connection.role ? friend : null, ownerid: users[connection.owner],
    });
    const twin = await call(urlOf(connection, true), { headers: admin });
    expect(twin.body).toMatchObject({ record1id: records[connection.r2], description: connection.description, statecode: connection.state, versionnumber: master.body.versionnumber });
    const shares = await call(`${urlOf(connection, true)}/access`, { headers: admin });
    expect(Object.fromEntries(shares.body.value.map((share: { principalid: string; accessmask: number }) => [share.principalid, share.accessmask]))).toEqual(Object.fromEntries(connection.shares));
  }
  for (const [index, id] of records.entries()) {
    const listed = await call(`${api.baseUrl}/records/${id}/connections?count=true`, { headers: admin });
    const expected = [...model.values()].filter((connection) => connection.r1 === index || connection.r2 === index).length;
    expect(listed.body.count).toBe(expected);
  }
}

describe('random operation sequences with storage failures', () => {
  it('leave the API answering as the model does, and the checker finding nothing', async () => {
    await fc.assert(fc.asyncProperty(fc.array(opArbitrary, { minLength: 10, maxLength: 30 }), run), { numRuns: 8, endOnFailure: true, ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED), path: process.env.FC_PATH ?? '0' } : {}) });
  }, 120_000);
});

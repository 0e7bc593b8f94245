import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json } from '../support/json';
import type { Exchange } from '../../shared/hosts/nodeHttp/server';
import { routes } from '../../shared/api/route';
import { ContractChecker } from '../support/contract';
import { call, principal, startApi, type TestApi } from '../support/http';

/**
 * Contract: the served definition and the app agree. Every registered route is in the definition and
 * back; each operation, called with a request whose body validates against the declared schema, answers
 * a declared status with a body that validates against the declared schema. Beyond these, the test host
 * checks every answer any HTTP suite receives against the definition (test/support/contract.ts), errors
 * included: the tests below show that check catches each kind of drift.
 */
let api: TestApi;
let swagger: Json;
let checker: ContractChecker;
const admin = principal('ad000000-0000-4000-8000-0000000c0c0c', { roles: ['Connections.Admin'] });

beforeAll(async () => {
  api = await startApi();
  const served = await call(`${api.baseUrl}/swagger.json`);
  expect(served.status).toBe(200);
  swagger = served.body;
  checker = new ContractChecker(swagger, ['health', 'swagger.json']);
});
afterAll(async () => api.close());

const operationsOf = (doc: Json) =>
  Object.entries(doc.paths as Json).flatMap(([path, item]) =>
    Object.entries(item as Json).map(([method, operation]) => ({ path, method, operation: operation as Json })),
  );

const exchange = (method: string, url: string, status: number, body: unknown, type = 'application/json'): Exchange => ({
  method,
  url,
  requestHeaders: {},
  status,
  headers: { 'content-type': type, etag: '"1"', location: 'x' },
  body: Buffer.from(JSON.stringify(body)),
});

describe('the served definition and the app', () => {
  it('are served without authentication and list the same routes', () => {
    const documented = operationsOf(swagger)
      .map(({ path, method }) => `${method.toUpperCase()} ${path.replace('{connectionrecordid}', '{connectionid}')}`)
      .sort();
    const registered = routes
      .filter((route) => !route.hidden)
      .map((route) => `${route.method} /${route.route}`)
      .sort();
    expect(documented).toEqual(registered);
    expect(swagger.host).toBe(new URL(api.baseUrl).host);
  });

  it('agree on every operation: requests that match the schemas succeed with responses that match theirs', async () => {
    const ids: Record<string, string> = {
      recordid: randomUUID(),
      otherrecord: randomUUID(),
      principalid: randomUUID(),
    };
    // Bodies per operation, checked against the declared schema before they are sent.
    const examples: Record<string, () => Json> = {
      CreateConnectionRole: () => ({
        name: `Role ${randomUUID().slice(0, 8)}`,
        category: 3,
        objecttypecodes: ['account', 'contact'],
      }),
      UpdateConnectionRole: () => ({ description: 'Changed through the contract test' }),
      CreateConnection: () => ({
        connectionid: randomUUID(),
        record1id: ids.recordid,
        record1objecttypecode: 'account',
        record1roleid: ids.connectionroleid,
        record2id: ids.otherrecord,
        record2objecttypecode: 'contact',
        record2name: 'Ada',
        description: 'Contract',
        effectivestart: '2026-01-01T00:00:00Z',
      }),
      UpdateConnection: () => ({ description: 'Updated', effectiveend: '2027-12-31T00:00:00Z' }),
      GrantAccess: () => ({
        principalid: ids.principalid,
        principaltype: 'systemuser',
        accessmask: 'ReadAccess, WriteAccess',
      }),
      ModifyAccess: () => ({ accessmask: 'ReadAccess' }),
    };
    const queries: Record<string, () => Json> = {
      ListConnectionsByRole: () => ({ roleid: ids.connectionroleid, typecode: 'account', top: '10', count: 'true' }),
      ListConnections: () => ({
        othertypecode: 'contact',
        statecode: '0',
        activeon: '2026-06-01',
        top: '10',
        count: 'true',
      }),
      ListConnectionRoles: () => ({ validfor: 'account', counterpart: 'contact', top: '10', count: 'true' }),
      GetConnectionAudit: () => ({ top: '10' }),
      GetRecordGraph: () => ({
        depth: '2',
        limit: '50',
        top: '10',
        count: 'true',
        othertypecode: 'contact',
        statecode: '0',
        activeon: '2026-06-01',
      }),
    };
    // An order in which each operation finds what it needs; deletes last.
    const order = [
      'ListObjectTypes',
      'CreateConnectionRole',
      'GetConnectionRole',
      'UpdateConnectionRole',
      'AssociateMatchingRole',
      'ListMatchingRoles',
      'ListConnectionRoles',
      'CreateConnection',
      'GetConnection',
      'UpdateConnection',
      'GetConnectionAudit',
      'ListConnections',
      'ListConnectionsByRole',
      'ListRecordRoles',
      'GetRecordGraph',
      'GrantAccess',
      'RetrieveSharedPrincipalsAndAccess',
      'RetrievePrincipalAccess',
      'ModifyAccess',
      'RevokeAccess',
      'DeleteConnection',
      'DeleteRecordConnections',
      'DisassociateMatchingRole',
      'DeleteConnectionRole',
    ];
    const byId = new Map(operationsOf(swagger).map((entry) => [entry.operation.operationId as string, entry]));
    expect([...byId.keys()].sort()).toEqual([...order].sort());

    for (const operationId of order) {
      const { path, method, operation } = byId.get(operationId) as { path: string; method: string; operation: Json };
      const values: Record<string, string> = {
        recordid: ids.recordid as string,
        connectionrecordid: ids.connectionid ?? '',
        principalid: ids.principalid as string,
        connectionroleid: ids.connectionroleid ?? '',
        matchingroleid: ids.connectionroleid ?? '',
      };
      const url = new URL(`${api.baseUrl}${path.replace(/\{(\w+)\}/g, (_match, name: string) => values[name] ?? '')}`);
      for (const [name, value] of Object.entries(queries[operationId]?.() ?? {})) url.searchParams.set(name, value);
      for (const parameter of operation.parameters as Json[]) {
        if (parameter.required && parameter.in === 'query')
          expect(url.searchParams.has(parameter.name), `${operationId} ${parameter.name}`).toBe(true);
      }
      const bodyParameter = (operation.parameters as Json[]).find((parameter) => parameter.in === 'body');
      const body = bodyParameter ? examples[operationId]?.() : undefined;
      if (bodyParameter) {
        const breaches = checker.checkRequestBody(operationId, body);
        expect(breaches, `${operationId} example`).toEqual([]);
      }
      // `call` fails on any answer the definition does not describe; here each must also be the first 2xx declared.
      const response = await call(url.toString(), {
        method: method.toUpperCase(),
        headers: admin,
        ...(body !== undefined && { body }),
      });
      const [status] = Object.keys(operation.responses as Json)
        .filter((code) => /^2/.test(code))
        .sort((a, b) => Number(b) - Number(a));
      expect(response.status, `${operationId}: ${JSON.stringify(response.body)}`).toBe(Number(status));
      if (operationId === 'CreateConnectionRole') ids.connectionroleid = response.body.connectionroleid;
      if (operationId === 'CreateConnection') ids.connectionid = response.body.connectionid;
    }
  });
});

describe('every answer the suites receive', () => {
  it('is checked: a status, member, content type or parameter the definition does not describe is caught', () => {
    const record = randomUUID();
    const problem = { type: 'about:blank', title: 'Conflict', status: 409, detail: 'x', code: 'ConnectionExists' };
    const connectionsOf = `/api/records/${record}/connections`;
    expect(checker.check(exchange('POST', '/api/connections', 202, {}))).toEqual([
      expect.stringContaining('does not declare status 202'),
    ]);
    expect(
      checker.check(exchange('POST', '/api/connections', 409, { ...problem, secret: 'x' }, 'application/problem+json')),
    ).toEqual([expect.stringContaining('must NOT have additional properties')]);
    expect(checker.check(exchange('POST', '/api/connections', 409, problem))).toEqual([
      expect.stringContaining('application/problem+json'),
    ]);
    expect(
      checker.check(exchange('GET', '/api/nowhere', 500, { ...problem, status: 500 }, 'application/problem+json')),
    ).toEqual([expect.stringContaining('a server error')]);
    expect(checker.check(exchange('GET', '/api/nowhere', 200, {}))).toEqual([expect.stringContaining('no operation')]);
    expect(checker.check(exchange('GET', `${connectionsOf}?count=yes`, 200, { value: [] }))).toEqual([
      expect.stringContaining('count=yes'),
    ]);
    expect(checker.check(exchange('GET', `${connectionsOf}?colour=red`, 200, { value: [] }))).toEqual([
      expect.stringContaining('does not declare'),
    ]);
    expect(checker.check(exchange('GET', `${connectionsOf}?count=true&top=5`, 200, { value: [], count: 0 }))).toEqual(
      [],
    );
    expect(
      checker.check(
        exchange('GET', `/api/records/${record}/connections/${randomUUID()}`, 200, { connectionid: 'not all there' }),
      ),
    ).toEqual([expect.stringContaining('does not match the definition')]);
  });

  it('declares 200 for a repeated create, of a connection and of a role', async () => {
    const role = { connectionroleid: randomUUID(), name: 'Repeated', category: 5 };
    expect((await call(`${api.baseUrl}/connectionroles`, { method: 'POST', headers: admin, body: role })).status).toBe(
      201,
    );
    expect((await call(`${api.baseUrl}/connectionroles`, { method: 'POST', headers: admin, body: role })).status).toBe(
      200,
    );
    const connection = {
      connectionid: randomUUID(),
      record1id: randomUUID(),
      record1objecttypecode: 1,
      record2id: randomUUID(),
      record2objecttypecode: 2,
    };
    expect(
      (await call(`${api.baseUrl}/connections`, { method: 'POST', headers: admin, body: connection })).status,
    ).toBe(201);
    expect(
      (await call(`${api.baseUrl}/connections`, { method: 'POST', headers: admin, body: connection })).status,
    ).toBe(200);
    for (const path of ['/connections', '/connectionroles']) {
      const responses = swagger.paths[path].post.responses as Json;
      expect(responses['200'].schema).toEqual(responses['201'].schema);
    }
  });

  it('declares the members conflict problems carry', async () => {
    const role = (
      await call(`${api.baseUrl}/connectionroles`, {
        method: 'POST',
        headers: admin,
        body: { name: 'In use', category: 5 },
      })
    ).body;
    const body = {
      connectionid: randomUUID(),
      record1id: randomUUID(),
      record1objecttypecode: 1,
      record1roleid: role.connectionroleid,
      record2id: randomUUID(),
      record2objecttypecode: 2,
    };
    await call(`${api.baseUrl}/connections`, { method: 'POST', headers: admin, body });
    const exists = await call(`${api.baseUrl}/connections`, {
      method: 'POST',
      headers: admin,
      body: { ...body, connectionid: randomUUID() },
    });
    const duplicate = await call(`${api.baseUrl}/connections`, {
      method: 'POST',
      headers: admin,
      body: { ...body, description: 'other' },
    });
    const inUse = await call(`${api.baseUrl}/connectionroles/${role.connectionroleid}`, {
      method: 'DELETE',
      headers: admin,
    });
    expect([exists.body.existingconnectionid, duplicate.body.connectionid, inUse.body.connectionroleid]).toEqual([
      body.connectionid,
      body.connectionid,
      role.connectionroleid,
    ]);
    expect(Object.keys(swagger.definitions.Problem.properties)).toEqual(
      expect.arrayContaining(['existingconnectionid', 'connectionid', 'connectionroleid']),
    );
  });

  it('types count as a boolean, which a connector sends as true or false', () => {
    for (const operationId of ['ListConnections', 'ListConnectionsByRole', 'ListConnectionRoles']) {
      const { operation } = operationsOf(swagger).find((entry) => entry.operation.operationId === operationId) as {
        operation: Json;
      };
      const count = (operation.parameters as Json[]).find((parameter) => parameter.name === 'count');
      expect(count).toMatchObject({ type: 'boolean', in: 'query' });
      expect(count?.enum).toBeUndefined();
    }
  });
});

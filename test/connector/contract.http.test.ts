import Ajv from 'ajv';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routes } from '../../shared/http/route';
import { call, principal, startApi, type TestApi } from '../support/http';

/**
 * Contract: the served definition and the app agree. Every registered route is in the definition and
 * back; each operation, called with a request whose body validates against the declared schema, answers
 * the declared status with a body that validates against the declared response schema.
 */
type Json = Record<string, any>;
let api: TestApi;
let swagger: Json;
const admin = principal('ad000000-0000-4000-8000-0000000c0c0c', { roles: ['Connections.Admin'] });
const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true });

beforeAll(async () => {
  api = await startApi();
  const served = await call(`${api.baseUrl}/swagger.json`);
  expect(served.status).toBe(200);
  swagger = served.body;
});
afterAll(async () => api.close());

const operationsOf = (doc: Json) =>
  Object.entries(doc.paths as Json).flatMap(([path, item]) => Object.entries(item as Json).map(([method, operation]) => ({ path, method, operation: operation as Json })));

/** Swagger's x-nullable as JSON Schema, so the validator accepts the nulls the definition allows. */
function withNulls(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withNulls);
  if (!node || typeof node !== 'object') return node;
  const copy = Object.fromEntries(Object.entries(node as Json).map(([key, value]) => [key, withNulls(value)]));
  if (copy['x-nullable'] === true && typeof copy.type === 'string') copy.type = [copy.type, 'null'];
  return copy;
}

function validator(schema: Json) {
  return ajv.compile(withNulls({ ...schema, definitions: swagger.definitions }) as Json);
}

describe('the served definition and the app', () => {
  it('are served without authentication and list the same routes', () => {
    const documented = operationsOf(swagger).map(({ path, method }) => `${method.toUpperCase()} ${path.replace('{connectionrecordid}', '{connectionid}')}`).sort();
    const registered = routes.filter((route) => !route.hidden).map((route) => `${route.method} /${route.route}`).sort();
    expect(documented).toEqual(registered);
    expect(swagger.host).toBe(new URL(api.baseUrl).host);
  });

  it('agree on every operation: requests that match the schemas succeed with responses that match theirs', async () => {
    const ids: Record<string, string> = { recordid: randomUUID(), otherrecord: randomUUID(), principalid: randomUUID() };
    // Bodies per operation, checked against the declared schema before they are sent.
    const examples: Record<string, () => Json> = {
      CreateConnectionRole: () => ({ name: `Role ${randomUUID().slice(0, 8)}`, category: 3, objecttypecodes: ['account', 'contact'] }),
      UpdateConnectionRole: () => ({ description: 'Changed through the contract test' }),
      CreateConnection: () => ({
        connectionid: randomUUID(), record1id: ids.recordid, record1objecttypecode: 'account', record1roleid: ids.connectionroleid,
        record2id: ids.otherrecord, record2objecttypecode: 'contact', record2name: 'Ada', description: 'Contract', effectivestart: '2026-01-01',
      }),
      UpdateConnection: () => ({ description: 'Updated', effectiveend: '2027-12-31T00:00:00Z' }),
      GrantAccess: () => ({ principalid: ids.principalid, principaltype: 'systemuser', accessmask: 'ReadAccess, WriteAccess' }),
      ModifyAccess: () => ({ accessmask: 'ReadAccess' }),
    };
    const queries: Record<string, () => Json> = {
      ListConnectionsByRole: () => ({ roleid: ids.connectionroleid, typecode: 'account', top: '10', count: 'true' }),
      ListConnections: () => ({ othertypecode: 'contact', statecode: '0', activeon: '2026-06-01', top: '10', count: 'true' }),
      ListConnectionRoles: () => ({ validfor: 'account', counterpart: 'contact', top: '10', count: 'true' }),
      GetRecordGraph: () => ({ depth: '2', limit: '50', top: '10', count: 'true', othertypecode: 'contact', statecode: '0', activeon: '2026-06-01' }),
    };
    // An order in which each operation finds what it needs; deletes last.
    const order = [
      'ListObjectTypes', 'CreateConnectionRole', 'GetConnectionRole', 'UpdateConnectionRole', 'AssociateMatchingRole', 'ListMatchingRoles', 'ListConnectionRoles',
      'CreateConnection', 'GetConnection', 'UpdateConnection', 'ListConnections', 'ListConnectionsByRole', 'ListRecordRoles', 'GetRecordGraph',
      'GrantAccess', 'RetrieveSharedPrincipalsAndAccess', 'RetrievePrincipalAccess', 'ModifyAccess', 'RevokeAccess',
      'DeleteConnection', 'DeleteRecordConnections', 'DisassociateMatchingRole', 'DeleteConnectionRole',
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
        if (parameter.required && parameter.in === 'query') expect(url.searchParams.has(parameter.name), `${operationId} ${parameter.name}`).toBe(true);
      }
      const bodyParameter = (operation.parameters as Json[]).find((parameter) => parameter.in === 'body');
      const body = bodyParameter ? examples[operationId]?.() : undefined;
      if (bodyParameter) {
        const valid = validator(bodyParameter.schema);
        expect(valid(body), `${operationId} example: ${JSON.stringify(valid.errors)}`).toBe(true);
      }
      const response = await call(url.toString(), { method: method.toUpperCase(), headers: admin, ...(body !== undefined && { body }) });
      const [status, declared] = Object.entries(operation.responses as Json).find(([code]) => /^2/.test(code)) as [string, Json];
      expect(response.status, `${operationId}: ${JSON.stringify(response.body)}`).toBe(Number(status));
      if (declared.schema) {
        const valid = validator(declared.schema);
        expect(valid(response.body), `${operationId} response: ${JSON.stringify(valid.errors)}`).toBe(true);
      }
      if (operationId === 'CreateConnectionRole') ids.connectionroleid = response.body.connectionroleid;
      if (operationId === 'CreateConnection') ids.connectionid = response.body.connectionid;
    }
  });
});

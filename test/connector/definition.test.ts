import SwaggerParser from '@apidevtools/swagger-parser';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Json } from '../support/json';
import { routes } from '../../shared/api/route';
import { buildApiProperties, buildSwagger } from '../../shared/api/openApi';
import { loadFunctions } from '../../shared/hosts/nodeHttp/loadFunctions';

// The connector certification rules (PowerPlatformConnectors' checklist and the validator's) as tests.
let swagger: Json;
let properties: Json;
const operations: { path: string; method: string; operation: Json }[] = [];

beforeAll(async () => {
  await loadFunctions(join(__dirname, '..', '..', 'functions'));
  swagger = buildSwagger(routes, { host: 'record-connections.azurewebsites.net' });
  properties = buildApiProperties(routes, {
    clientId: '11111111-2222-3333-4444-555555555555',
    resourceUri: 'api://11111111-2222-3333-4444-555555555555',
  });
  for (const [path, item] of Object.entries(swagger.paths as Json)) {
    for (const [method, operation] of Object.entries(item as Json)) operations.push({ path, method, operation });
  }
});

function walkSchemas(node: unknown, visit: (schema: Json, where: string) => void, where = ''): void {
  if (!node || typeof node !== 'object') return;
  const schema = node as Json;
  visit(schema, where);
  for (const [name, child] of Object.entries((schema.properties ?? {}) as Json))
    walkSchemas(child, visit, `${where}.${name}`);
  if (schema.items) walkSchemas(schema.items, visit, `${where}[]`);
}

describe('the generated API definition', () => {
  it('is valid Swagger 2.0, well under the 1 MB limit', async () => {
    expect(swagger.swagger).toBe('2.0');
    await SwaggerParser.validate(structuredClone(swagger) as never);
    expect(JSON.stringify(swagger).length).toBeLessThan(512 * 1024);
  });

  it('has the title, description, contact and metadata the validator wants', () => {
    expect(swagger.info.title.length).toBeLessThanOrEqual(30);
    expect(swagger.info.title).not.toMatch(/\b(api|connector)\b/i);
    expect(swagger.info.description.length).toBeGreaterThanOrEqual(30);
    expect(swagger.info.description.length).toBeLessThanOrEqual(500);
    expect(swagger.info.contact).toMatchObject({
      name: expect.any(String),
      url: expect.any(String),
      email: expect.any(String),
    });
    const metadata = Object.fromEntries(
      (swagger['x-ms-connector-metadata'] as Json[]).map((entry) => [entry.propertyName, entry.propertyValue]),
    );
    expect(Object.keys(metadata).sort()).toEqual(['Categories', 'Privacy policy', 'Website']);
  });

  it("names every operation with a unique PascalCase id, including Dataverse's verbs", () => {
    const ids = operations.map(({ operation }) => operation.operationId as string);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^[A-Z][A-Za-z0-9]+$/);
    for (const verb of [
      'CreateConnection',
      'GetConnection',
      'ListConnections',
      'UpdateConnection',
      'DeleteConnection',
      'GrantAccess',
      'ModifyAccess',
      'RevokeAccess',
      'RetrievePrincipalAccess',
      'RetrieveSharedPrincipalsAndAccess',
      'CreateConnectionRole',
      'ListConnectionRoles',
      'GetConnectionRole',
      'UpdateConnectionRole',
      'DeleteConnectionRole',
      'ListMatchingRoles',
      'ListObjectTypes',
      'GetRecordGraph',
    ]) {
      expect(ids).toContain(verb);
    }
  });

  it('gives every operation a short summary and a different, full-sentence description', () => {
    for (const { operation } of operations) {
      expect(operation.summary.length, operation.operationId).toBeLessThanOrEqual(80);
      expect(operation.summary, operation.operationId).toMatch(/^[A-Za-z0-9 ()]+$/);
      expect(operation.description, operation.operationId).toMatch(/^[A-Z].{20,}\.$/);
      expect(operation.description).not.toBe(operation.summary);
    }
  });

  it('has one success shape per operation (every 2xx with the same schema and headers), with a schema whenever there is a body', () => {
    for (const { operation } of operations) {
      const successes = Object.keys(operation.responses).filter((status) => /^2\d\d$/.test(status));
      expect(successes.length, operation.operationId).toBeGreaterThanOrEqual(1);
      // The designer offers one set of outputs per action: a repeated create's 200 must look like its 201.
      const shapes = new Set(
        successes.map((status) =>
          JSON.stringify({ schema: operation.responses[status].schema, headers: operation.responses[status].headers }),
        ),
      );
      expect(shapes.size, operation.operationId).toBe(1);
      for (const status of successes)
        if (status !== '204') expect(operation.responses[status].schema, operation.operationId).toBeDefined();
    }
  });

  it('declares every enum with values of its own type (a query boolean is sent as true or false)', () => {
    const typeOf = (value: unknown) =>
      typeof value === 'number' ? (Number.isInteger(value) ? 'integer' : 'number') : typeof value;
    for (const { operation } of operations) {
      for (const parameter of operation.parameters as Json[]) {
        for (const value of (parameter.enum ?? []) as unknown[]) {
          expect(
            [parameter.type, parameter.type === 'number' ? 'integer' : parameter.type],
            `${operation.operationId} ${parameter.name}`,
          ).toContain(typeOf(value));
        }
      }
    }
    for (const [name, definition] of Object.entries(swagger.definitions as Json)) {
      walkSchemas(definition, (schema, where) => {
        for (const value of (schema.enum ?? []) as unknown[])
          expect([schema.type, schema.type === 'number' ? 'integer' : schema.type], `${name}${where}`).toContain(
            typeOf(value),
          );
      });
    }
  });

  it('follows the parameter rules: required, single-encoded path parameters; no body on GET; no connectionId', () => {
    for (const { method, operation, path } of operations) {
      for (const parameter of operation.parameters as Json[]) {
        expect(parameter.name.toLowerCase()).not.toBe('connectionid');
        if (parameter.in === 'path') {
          expect(parameter.required).toBe(true);
          expect(parameter['x-ms-url-encoding']).toBe('single');
          expect(path).toContain(`{${parameter.name}}`);
        }
        if (method === 'get') expect(parameter.in).not.toBe('body');
      }
    }
  });

  it('describes every parameter and property for makers, and uses nothing Power Automate rejects', () => {
    const text = JSON.stringify(swagger);
    expect(text).not.toMatch(/"(oneOf|anyOf|allOf|nullable)"/);
    for (const { operation } of operations) {
      for (const parameter of operation.parameters as Json[]) {
        expect(parameter['x-ms-summary'], `${operation.operationId} ${parameter.name}`).toBeTruthy();
        expect(parameter.description, `${operation.operationId} ${parameter.name}`).toBeTruthy();
      }
    }
    for (const [name, definition] of Object.entries(swagger.definitions as Json)) {
      walkSchemas(definition, (schema, where) => {
        if (where === '' || where.endsWith('[]')) {
          // Definitions and array items are described as a whole; their fields each get a display name.
          if (where === '' || schema.type === 'object') expect(schema.description, `${name}${where}`).toBeTruthy();
          return;
        }
        expect(schema['x-ms-summary'], `${name}${where}`).toBeTruthy();
        expect(schema.description, `${name}${where}`).toBeTruthy();
      });
    }
  });

  it('offers pickers instead of GUIDs for roles and record types', () => {
    const body = swagger.definitions.NewConnection.properties;
    for (const field of ['record1roleid', 'record2roleid']) {
      expect(body[field]['x-ms-dynamic-values'].operationId).toBe('ListConnectionRoles');
      expect(body[field]['x-ms-dynamic-list'].operationId).toBe('ListConnectionRoles');
    }
    for (const field of ['record1objecttypecode', 'record2objecttypecode']) {
      expect(body[field]['x-ms-dynamic-values'].operationId).toBe('ListObjectTypes');
      expect(body[field]['x-ms-dynamic-list'].operationId).toBe('ListObjectTypes');
    }
  });

  it('marks every list as pageable by nextLink, and the connection properties route later pages', () => {
    const pageable = operations.filter(({ operation }) => operation['x-ms-pageable']);
    expect(pageable.map(({ operation }) => operation.operationId).sort()).toEqual([
      'GetConnectionAudit',
      'ListConnectionRoles',
      'ListConnections',
      'ListConnectionsByRole',
    ]);
    for (const { operation } of pageable) {
      expect(operation['x-ms-pageable']).toEqual({ nextLinkName: 'nextLink' });
      const ref = operation.responses['200'].schema.$ref.split('/').at(-1);
      expect(swagger.definitions[ref].properties.nextLink).toBeDefined();
    }
    const policy = properties.properties.policyTemplateInstances.find(
      (instance: Json) => instance.templateId === 'updatenextlink',
    );
    expect(policy.parameters['x-ms-apimTemplateParameter.nextLinkPropertyName']).toBe('nextLink');
    expect(policy.parameters['x-ms-apimTemplate-operationName'].sort()).toEqual([
      'GetConnectionAudit',
      'ListConnectionRoles',
      'ListConnections',
      'ListConnectionsByRole',
    ]);
  });

  it('signs makers in with Microsoft Entra ID, in both the definition and the properties', () => {
    expect(swagger.securityDefinitions.oauth2_auth).toMatchObject({ type: 'oauth2', flow: 'accessCode' });
    expect(swagger.security).toEqual([{ oauth2_auth: [] }]);
    const oauth = properties.properties.connectionParameters.token.oAuthSettings;
    expect(oauth.identityProvider).toBe('aad');
    expect(oauth.customParameters.resourceUri.value).toBe('api://11111111-2222-3333-4444-555555555555');
    expect(properties.properties.iconBrandColor).toMatch(/^#[0-9A-Fa-f]{6}$/);
    expect(properties.properties.iconBrandColor.toLowerCase()).not.toMatch(/^#(007ee5|ffffff)$/);
  });

  it('is what npm run connector wrote into infra/connector (regenerate after changing the API)', () => {
    const written = JSON.parse(
      readFileSync(join(__dirname, '..', '..', 'infra', 'connector', 'apiDefinition.swagger.json'), 'utf8'),
    ) as Json;
    expect(written).toEqual(swagger);
  });
});

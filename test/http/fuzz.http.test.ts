import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json } from '../support/json';
import { call, principal, startApi, type TestApi } from '../support/http';

/**
 * A bounded, seeded fuzz run driven by the served definition: for every operation it declares, requests
 * with valid and mutated path values, query parameters, bodies and headers, sent to the local host over
 * a real socket. Whatever a client sends, the answer is never a 5xx, every error is
 * application/problem+json, and (through the test host's contract check) every answer is one the
 * definition describes. FUZZ_SEED and FUZZ_RUNS replay or widen a run.
 */

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_125);
const RUNS = Number(process.env.FUZZ_RUNS ?? 400);

let api: TestApi;
const admin = principal('f0220000-0000-4000-8000-0000000000ad', { roles: ['Connections.Admin'] });
const user = principal('f0220000-0000-4000-8000-000000000001');
const known: Record<string, string[]> = {};
/** Values of the pickers (x-ms-dynamic-values), read from the operations the definition names. */
const dynamic: Record<string, string[]> = {};

interface Operation {
  path: string;
  method: string;
  operation: Json;
}
let operations: Operation[] = [];

beforeAll(async () => {
  api = await startApi();
  // Something to find: a role that matches itself, a connection using it, and a share on it.
  const role = await call(`${api.baseUrl}/connectionroles`, {
    method: 'POST',
    headers: admin,
    body: { name: 'Fuzzed', category: 3 },
  });
  const roleId = role.body.connectionroleid as string;
  await call(`${api.baseUrl}/connectionroles/${roleId}/matchingroles/${roleId}`, { method: 'PUT', headers: admin });
  const record = randomUUID();
  const connection = await call(`${api.baseUrl}/connections`, {
    method: 'POST',
    headers: user,
    body: {
      record1id: record,
      record1objecttypecode: 'account',
      record1roleid: roleId,
      record2id: randomUUID(),
      record2objecttypecode: 'contact',
    },
  });
  const principalId = randomUUID();
  await call(`${api.baseUrl}/records/${record}/connections/${connection.body.connectionid}/access`, {
    method: 'POST',
    headers: user,
    body: { principalid: principalId, principaltype: 'systemuser', accessmask: 'ReadAccess' },
  });
  Object.assign(known, {
    recordid: [record, connection.body.record2id],
    connectionrecordid: [connection.body.connectionid, connection.body.relatedconnectionid],
    connectionroleid: [roleId],
    matchingroleid: [roleId],
    principalid: [principalId, 'f0220000-0000-4000-8000-000000000001'],
    roleid: [roleId],
  });
  operations = Object.entries(api.definition.paths as Json).flatMap(([path, item]) =>
    Object.entries(item as Json).map(([method, operation]) => ({
      path,
      method: method.toUpperCase(),
      operation: operation as Json,
    })),
  );
  for (const operationId of ['ListObjectTypes', 'ListConnectionRoles']) {
    const listed = await call(
      `${api.baseUrl}${operationId === 'ListObjectTypes' ? '/objecttypes' : '/connectionroles'}`,
      { headers: admin },
    );
    expect(listed.status).toBe(200);
    dynamic[operationId] = (listed.body.value as Json[]).map((item) =>
      String(item.objecttypename ?? item.connectionroleid),
    );
  }
});
afterAll(async () => api.close());

// Values that broke, or could break, a parser, an encoder or a bitwise operator somewhere.
const hostileText = fc.oneof(
  fc.constantFrom(
    '\ud800',
    'a\udfffb',
    '\udc00\ud800',
    '',
    ' ',
    '0',
    '-1',
    '1e300',
    '4294967297',
    'NaN',
    'null',
    'true',
    '[]',
    '{}',
    '__proto__',
    'constructor',
    '%',
    '%00',
    '%E0%A4%A',
    '%ED%A0%80',
    '../..',
    "'",
    '"',
    '\\',
    '\u0000',
    '\u202e',
    '٣',
    'ＡＢＣ',
    'x'.repeat(5000),
    '9999-12-31T23:59:59-23:59',
    '0000-01-01',
    '2024-02-30',
    'c_',
    'ReadAccess, FlyAccess',
    'AAAAAAAA-0000-4000-8000-000000000001',
  ),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: fc.constantFrom('\ud800', '\udc00', 'a', '%', '/', '+', ',', '_'), maxLength: 12 }),
);
const hostileJson: fc.Arbitrary<unknown> = fc.oneof(
  hostileText,
  fc.constantFrom(
    1e300,
    -1,
    2 ** 32,
    2 ** 32 + 1,
    2 ** 53,
    1.5,
    -0,
    0,
    null,
    true,
    false,
    [],
    {},
    JSON.parse('{"__proto__": {"polluted": 1}}') as unknown,
  ),
  fc.jsonValue({ maxDepth: 3 }),
);

function resolve(schema: Json): Json {
  const ref = typeof schema.$ref === 'string' ? schema.$ref.split('/').at(-1) : undefined;
  return ref ? ((api.definition.definitions as Json)[ref] as Json) : schema;
}

/** A value the declaration allows (formats and pickers included); nulls where it says x-nullable. */
function validValue(declared: Json, name = ''): fc.Arbitrary<unknown> {
  const schema = resolve(declared);
  const picker = schema['x-ms-dynamic-values']?.operationId as string | undefined;
  let value: fc.Arbitrary<unknown>;
  if (Array.isArray(schema.enum)) value = fc.constantFrom(...(schema.enum as unknown[]));
  else if (picker && dynamic[picker]?.length) value = fc.constantFrom(...dynamic[picker]);
  else if (known[name]?.length) value = fc.oneof(fc.constantFrom(...known[name]), fc.uuid());
  else if (schema.format === 'uuid') value = fc.uuid();
  else if (schema.format === 'date-time')
    value = fc
      .date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true })
      .map((date) => date.toISOString());
  else if (schema.type === 'integer')
    value = fc.integer({ min: Number(schema.minimum ?? 0), max: Math.min(Number(schema.maximum ?? 1000), 2 ** 31) });
  else if (schema.type === 'number') value = fc.double({ noNaN: true, noDefaultInfinity: true });
  else if (schema.type === 'boolean') value = fc.boolean();
  else if (schema.type === 'array') value = fc.array(validValue(schema.items as Json), { maxLength: 3 });
  else if (schema.type === 'object') {
    const properties = Object.entries((schema.properties ?? {}) as Json);
    value = fc.record(
      Object.fromEntries(properties.map(([key, property]) => [key, validValue(property as Json, key)])),
      { requiredKeys: (schema.required ?? []) as string[] },
    );
  } else
    value = fc.string({
      minLength: Number(schema.minLength ?? 0),
      maxLength: Math.min(Number(schema.maxLength ?? 40), 40),
    });
  return schema['x-nullable']
    ? fc.oneof({ arbitrary: value, weight: 4 }, { arbitrary: fc.constant(null), weight: 1 })
    : value;
}

/** A body: valid, valid with one field broken, missing or unknown, or something else entirely. */
function bodyOf(schema: Json): fc.Arbitrary<{ json?: unknown; raw?: string }> {
  const valid = validValue(schema);
  return fc.oneof(
    { weight: 6, arbitrary: valid.map((json) => ({ json })) },
    {
      weight: 3,
      arbitrary: fc
        .tuple(
          valid,
          fc.string({
            unit: fc.constantFrom('a', 'b', 'record1id', 'accessmask', 'effectivestart', 'statecode', 'name'),
            maxLength: 2,
          }),
          hostileJson,
          fc.boolean(),
        )
        .map(([json, key, broken, drop]) => {
          if (!json || typeof json !== 'object' || Array.isArray(json)) return { json: broken };
          const fields = { ...(json as Json) };
          const names = Object.keys(fields);
          const target = names.length > 0 && drop ? (names[key.length % names.length] as string) : key || 'extra';
          if (drop && names.length > 0 && key.length === 0) delete fields[target];
          else fields[target] = broken;
          return { json: fields };
        }),
    },
    { weight: 1, arbitrary: hostileJson.map((json) => ({ json })) },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(
          '{"record1id": ',
          '[',
          '['.repeat(20_000),
          '{"a":1}{"a":2}',
          '\ufeff{}',
          'null',
          '"\\ud800"',
          `{"description":"${'x'.repeat(70_000)}"}`,
        )
        .map((raw) => ({ raw })),
    },
  );
}

/** `arbitrary` in `present` draws out of `present + absent`, else undefined. */
const sometimes = <T>(arbitrary: fc.Arbitrary<T>, present: number, absent: number): fc.Arbitrary<T | undefined> =>
  fc.oneof({ weight: present, arbitrary }, { weight: absent, arbitrary: fc.constant(undefined) });

// Weighted so that most requests get past authentication and validation to the domain and storage,
// while every kind of hostile part still comes up many times a run.
/** A path or query value: mostly what the declaration allows, often something hostile. */
const parameterValue = (parameter: Json): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 6, arbitrary: validValue(parameter, parameter.name as string).map(String) },
    { weight: 1, arbitrary: hostileText },
  );

const principals: fc.Arbitrary<Record<string, string>> = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(admin, admin, user, principal(randomUUID())) },
  {
    weight: 1,
    arbitrary: fc.constantFrom<Record<string, string>>(
      {},
      { 'x-ms-client-principal': 'bm9wZQ==' },
      { 'x-ms-client-principal': '!!!' },
      { 'x-ms-client-principal': Buffer.from('{"claims":[{"typ":"oid","val":"x"}]}').toString('base64') },
    ),
  },
);
const contentTypes = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.constantFrom('application/json', 'application/json; charset=utf-8', 'application/merge-patch+json'),
  },
  { weight: 1, arbitrary: fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/jsonx', '') },
);
const ifMatch = sometimes(fc.constantFrom('*', '"1.abc"', 'W/"1.abc"', '"', '"a", "b"', ',,,', 'x'.repeat(300)), 1, 3);

/** A path segment: percent-encoded, or raw as a careless client sends it (a lone surrogate cannot be encoded). */
function segment(value: string, encode: boolean): string {
  const raw = value.replace(/[/?#]/g, '_');
  if (!encode) return raw;
  try {
    return encodeURIComponent(value);
  } catch {
    return raw;
  }
}

interface FuzzRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: unknown;
  rawBody?: string;
}

function requestFor({ path, method, operation }: Operation): fc.Arbitrary<FuzzRequest> {
  const parameters = (operation.parameters ?? []) as Json[];
  const inPath = parameters.filter((parameter) => parameter.in === 'path');
  const inQuery = parameters.filter((parameter) => parameter.in === 'query');
  const body = parameters.find((parameter) => parameter.in === 'body');
  const pathValues = fc.tuple(
    ...inPath.map((parameter) =>
      fc.tuple(fc.constant(parameter.name as string), parameterValue(parameter), fc.boolean()),
    ),
  );
  const queryValues = fc.tuple(
    ...inQuery.map((parameter) =>
      sometimes(
        fc.tuple(fc.constant(parameter.name as string), parameterValue(parameter)),
        parameter.required ? 12 : 1,
        parameter.required ? 1 : 2,
      ),
    ),
  );
  return fc
    .record({
      method: fc.oneof(
        { weight: 15, arbitrary: fc.constant(method) },
        { weight: 1, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE') },
      ),
      pathValues,
      queryValues,
      unknownQuery: sometimes(fc.tuple(hostileText, hostileText), 1, 12),
      body: body ? sometimes(bodyOf(body.schema as Json), 12, 1) : fc.constant(undefined),
      principal: principals,
      contentType: contentTypes,
      ifMatch,
    })
    .map((drawn) => {
      let url = `${api.baseUrl}${path}`;
      for (const [name, value, encode] of drawn.pathValues) url = url.replace(`{${name}}`, segment(value, encode));
      const query = new URLSearchParams();
      for (const entry of drawn.queryValues) if (entry) query.append(...entry);
      if (drawn.unknownQuery) query.append(...drawn.unknownQuery);
      const search = query.toString();
      const headers: Record<string, string> = {
        ...drawn.principal,
        ...(drawn.contentType && { 'content-type': drawn.contentType }),
        ...(drawn.ifMatch !== undefined && { 'if-match': drawn.ifMatch }),
      };
      // fetch refuses a body on GET; other methods carry whatever was drawn.
      const body = drawn.method === 'GET' || drawn.body === undefined ? undefined : drawn.body;
      return {
        method: drawn.method,
        url: search ? `${url}?${search}` : url,
        headers,
        ...(body?.raw !== undefined && { rawBody: body.raw }),
        ...(body && 'json' in body && { rawBody: JSON.stringify(body.json) ?? 'undefined' }),
      };
    });
}

describe('a definition-driven fuzz run', () => {
  it(`answers ${RUNS} generated requests (seed ${SEED}) with no 5xx, and every error as a problem`, async () => {
    const statuses = new Map<number, number>();
    const anyRequest = fc.constantFrom(...operations).chain(requestFor);
    await fc.assert(
      fc.asyncProperty(anyRequest, async (request) => {
        const response = await call(request.url, {
          method: request.method,
          headers: request.headers,
          ...(request.rawBody !== undefined && { rawBody: request.rawBody }),
        });
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        expect(response.status, `${request.method} ${request.url}`).toBeLessThan(500);
        if (response.status >= 400) {
          expect(response.headers.get('content-type')).toContain('application/problem+json');
          expect(response.body).toMatchObject({ status: response.status, code: expect.any(String) });
        }
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    // The run reached past validation too: successes, refusals and not-founds alike.
    const seen = [...statuses.keys()];
    expect(
      seen.some((status) => status < 300),
      JSON.stringify([...statuses]),
    ).toBe(true);
    expect(seen).toEqual(expect.arrayContaining([400, 401, 404]));
  }, 60_000);
});

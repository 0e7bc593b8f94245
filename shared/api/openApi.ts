import { z } from 'zod';
import { doc } from '../domain/doc';
import { problemMembers } from '../domain/errors';
import { guidPattern } from '../domain/ids';
import type { RouteDefinition } from './route';

/**
 * The API definition, generated from the route table and its zod schemas: Swagger 2.0, because Power
 * Platform custom connectors take OpenAPI 2.0, shaped by the connector certification rules (no
 * oneOf/anyOf or nullable, x-ms-summary and a description everywhere, pickers, x-ms-pageable).
 */
type Json = { [key: string]: unknown };

export const API_TITLE = 'Record Connections';
export const API_DESCRIPTION =
  'Connect any two business records, the way Dataverse connections do: each connection is visible from both records, ' +
  'with roles such as Doctor and Patient, effective dates, status, and sharing with users and teams.';
export const NEXT_LINK = 'nextLink';

/** The platform reserves the parameter name connectionId: the definition calls the path segment this. */
const RESERVED_PARAMETERS: Record<string, string> = { connectionid: 'connectionrecordid' };

export const API_VERSION = '1.0.0';

export interface SwaggerOptions {
  /** The Function App's host name, e.g. record-connections.azurewebsites.net. */
  host: string;
}

const problemSchema = z
  .object({
    type: z.string().meta(doc('Type', 'A URI naming the problem type.')),
    title: z.string().meta(doc('Title', 'A short summary of the problem.')),
    status: z.number().int().meta(doc('Status', 'The HTTP status code.')),
    detail: z.string().meta(doc('Detail', 'What went wrong, for people.')),
    code: z.string().meta(doc('Code', "A stable error code, Dataverse's error name where there is one.")),
    errors: z
      .array(
        z
          .object({
            field: z.string().meta(doc('Field', 'The offending field.')),
            message: z.string().meta(doc('Message', 'What is wrong with it.')),
          })
          .meta({ title: 'FieldError', description: 'One invalid field.' }),
      )
      .optional()
      .meta(doc('Errors', 'The invalid fields, for validation problems.')),
    // The members conflicts carry (shared/errors.ts), declared so clients may rely on them.
    ...Object.fromEntries(
      Object.entries(problemMembers).map(([name, { summary, description }]) => [
        name,
        z
          .string()
          .optional()
          .meta(doc(summary, description, { format: 'uuid' })),
      ]),
    ),
  })
  .meta({ title: 'Problem', description: 'An RFC 9457 problem document.' });

/** A zod schema as a Swagger 2.0 schema: no unions, no null, no JSON Schema keywords Swagger lacks. */
export function swaggerSchema(schema: z.ZodType, io: 'input' | 'output'): Json {
  const json = z.toJSONSchema(schema, { target: 'draft-4', io, unrepresentable: 'any' }) as Json;
  return simplify(json);
}

const nonNull = (types: unknown[]): string[] =>
  types.filter((type): type is string => typeof type === 'string' && type !== 'null');

function simplify(node: Json): Json {
  const result: Json = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === '$schema' || key === 'id' || key === '$id') continue;
    if (key === 'properties' && value && typeof value === 'object') {
      result.properties = Object.fromEntries(
        Object.entries(value as Record<string, Json>).map(([name, child]) => [name, simplify(child)]),
      );
    } else if (key === 'items' && value && typeof value === 'object' && !Array.isArray(value)) {
      result.items = simplify(value as Json);
    } else if (key === 'anyOf' || key === 'oneOf') {
      const branches = (value as Json[]).map(simplify);
      if (branches.some((branch) => branch.type === 'null')) result['x-nullable'] = true;
      Object.assign(result, collapse(branches));
    } else if (key === 'const') {
      result.enum = [value];
    } else {
      result[key] = value;
    }
  }
  if (Array.isArray(result.type)) {
    const types = nonNull(result.type);
    // Swagger 2.0 has no null type; x-nullable is the extension connectors and AutoRest read.
    if (types.length < result.type.length) result['x-nullable'] = true;
    result.type = types.includes('string') ? 'string' : (types[0] ?? 'string');
  }
  if (Array.isArray(result.enum)) {
    const values = result.enum.filter((item: unknown) => item !== null);
    result.enum = values;
    result.type ??= typeof values[0] === 'number' ? 'integer' : 'string';
  }
  if (result.pattern === guidPattern.source) {
    // The GUID check is case-insensitive, which a JSON Schema pattern cannot say: name the format instead.
    delete result.pattern;
    result.format = 'uuid';
  }
  if (result.type !== 'string') {
    delete result.pattern;
    delete result.minLength;
    delete result.maxLength;
  }
  if (result.type === 'integer' || result.type === 'number') delete result.format;
  if (result.type !== 'object') delete result.additionalProperties;
  return result;
}

/** A union as one schema: enums merge; a choice that includes a string becomes a string (codes or names). */
function collapse(branches: Json[]): Json {
  const useful = branches.filter(
    (branch) => branch.type !== 'null' && !(Array.isArray(branch.enum) && branch.enum.every((item) => item === null)),
  );
  if (useful.every((branch) => Array.isArray(branch.enum))) {
    const values = useful.flatMap((branch) => branch.enum as unknown[]);
    return { type: typeof values[0] === 'number' ? 'integer' : 'string', enum: values };
  }
  const stringy = useful.find((branch) => branch.type === 'string');
  if (stringy && useful.length > 1) return { type: 'string' };
  return useful[0] ?? { type: 'string' };
}

const pathOf = (route: string): string =>
  `/${route.replace(/\{([^}:?]+)(?::[^}?]+)?\??\}/g, (_match, name: string) => `{${RESERVED_PARAMETERS[name] ?? name}}`)}`;

const PARAMETER_KEYS = [
  'type',
  'format',
  'enum',
  'default',
  'pattern',
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  'description',
  'items',
];

function parametersOf(schema: z.ZodType | undefined, location: 'path' | 'query'): Json[] {
  if (!schema) return [];
  const json = swaggerSchema(schema, 'input');
  const properties = (json.properties ?? {}) as Record<string, Json>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => {
    const parameter: Json = {
      name: location === 'path' ? (RESERVED_PARAMETERS[name] ?? name) : name,
      in: location,
      required: location === 'path' || (required.has(name) && property.default === undefined),
    };
    for (const key of PARAMETER_KEYS) if (property[key] !== undefined) parameter[key] = property[key];
    for (const [key, value] of Object.entries(property)) if (key.startsWith('x-ms-')) parameter[key] = value;
    parameter.type ??= 'string';
    // A query string carries every value as text: a boolean's wire values are "true" and "false" by
    // definition, and an enum of those strings would contradict the declared type.
    if (parameter.type === 'boolean') delete parameter.enum;
    if (location === 'path') parameter['x-ms-url-encoding'] = 'single';
    return parameter;
  });
}

function titleOf(schema: z.ZodType): string {
  const title = z.globalRegistry.get(schema)?.title;
  if (!title) throw new Error('every body and response schema needs a title: .meta({ title, description })');
  return title;
}

export function buildSwagger(table: RouteDefinition[], options: SwaggerOptions): Json {
  const definitions: Record<string, Json> = { Problem: swaggerSchema(problemSchema, 'output') };
  const define = (schema: z.ZodType, io: 'input' | 'output'): Json => {
    const title = titleOf(schema);
    definitions[title] ??= swaggerSchema(schema, io);
    return { $ref: `#/definitions/${title}` };
  };
  const paths: Record<string, Record<string, Json>> = {};
  for (const route of table.filter((candidate) => !candidate.hidden)) {
    const parameters = [...parametersOf(route.params, 'path'), ...parametersOf(route.query, 'query')];
    if (route.body) {
      parameters.push({
        name: 'body',
        in: 'body',
        required: true,
        description: 'The request body.',
        'x-ms-summary': 'Body',
        schema: define(route.body, 'input'),
      });
    }
    if (route.ifMatch) {
      parameters.push({
        name: 'If-Match',
        in: 'header',
        required: false,
        type: 'string',
        'x-ms-summary': 'If-Match',
        description: 'The ETag from an earlier read: the change happens only if nobody changed it since.',
        'x-ms-visibility': 'advanced',
      });
    }
    const { response } = route;
    const success: Json = { description: response.description };
    if (response.schema) success.schema = define(response.schema, 'output');
    if (response.headers) {
      success.headers = Object.fromEntries(
        Object.entries(response.headers).map(([name, description]) => [
          name === 'etag' ? 'ETag' : name === 'location' ? 'Location' : name,
          { type: 'string', description },
        ]),
      );
    }
    const alternatives = Object.entries(response.alternatives ?? {}).map(([status, description]) => [
      status,
      { ...success, description },
    ]);
    const operation: Json = {
      operationId: route.operationId,
      summary: route.summary,
      description: route.description,
      parameters,
      responses: {
        [String(response.status)]: success,
        ...Object.fromEntries(alternatives),
        default: {
          description: 'The request failed; the problem says why.',
          schema: { $ref: '#/definitions/Problem' },
        },
      },
      ...(route.visibility && { 'x-ms-visibility': route.visibility }),
      ...(route.pageable && { 'x-ms-pageable': { nextLinkName: NEXT_LINK } }),
    };
    paths[pathOf(route.route)] ??= {};
    (paths[pathOf(route.route)] as Record<string, Json>)[route.method.toLowerCase()] = operation;
  }
  return {
    swagger: '2.0',
    info: {
      title: API_TITLE,
      description: API_DESCRIPTION,
      version: API_VERSION,
      contact: {
        name: 'record-connections maintainers',
        url: `https://${options.host}/api/swagger.json`,
        email: 'maintainers@users.noreply.github.com',
      },
    },
    host: options.host,
    basePath: '/api',
    schemes: ['https'],
    consumes: ['application/json'],
    produces: ['application/json'],
    paths,
    definitions,
    securityDefinitions: {
      oauth2_auth: {
        type: 'oauth2',
        flow: 'accessCode',
        authorizationUrl: 'https://login.microsoftonline.com/common/oauth2/authorize',
        tokenUrl: 'https://login.microsoftonline.com/common/oauth2/authorize',
        scopes: {},
      },
    },
    security: [{ oauth2_auth: [] }],
    'x-ms-connector-metadata': [
      { propertyName: 'Website', propertyValue: `https://${options.host}/api/health` },
      { propertyName: 'Privacy policy', propertyValue: `https://${options.host}/api/swagger.json` },
      { propertyName: 'Categories', propertyValue: 'Productivity;IT Operations' },
    ],
  };
}

/** apiProperties.json: Entra ID sign-in (calls run as the maker) and the nextLink policy for paging. */
export function buildApiProperties(table: RouteDefinition[], options: { clientId: string; resourceUri: string }): Json {
  return {
    properties: {
      iconBrandColor: '#0F6CBD',
      capabilities: [],
      connectionParameters: {
        token: {
          type: 'oauthSetting',
          oAuthSettings: {
            identityProvider: 'aad',
            clientId: options.clientId,
            scopes: [],
            redirectMode: 'GlobalPerConnector',
            redirectUrl: 'https://global.consent.azure-apim.net/redirect',
            properties: {
              IsFirstParty: 'False',
              AzureActiveDirectoryResourceId: options.resourceUri,
              IsOnbehalfofLoginSupported: false,
            },
            customParameters: {
              loginUri: { value: 'https://login.microsoftonline.com' },
              tenantId: { value: 'common' },
              resourceUri: { value: options.resourceUri },
              enableOnbehalfOfLogin: { value: 'false' },
            },
          },
        },
      },
      policyTemplateInstances: [
        {
          templateId: 'updatenextlink',
          title: 'Route nextLink through the connector so later pages carry the connection',
          parameters: {
            'x-ms-apimTemplate-operationName': table
              .filter((route) => route.pageable && !route.hidden)
              .map((route) => route.operationId),
            'x-ms-apimTemplateParameter.nextLinkPropertyName': NEXT_LINK,
          },
        },
      ],
    },
  };
}

import type { HttpMethod, HttpRequest, HttpResponseInit } from '@azure/functions';
import { z } from 'zod';
import type { Caller } from '../domain/caller';
import { DomainError, validationError, type FieldError } from '../domain/errors';
import type { ConnectorVisibility } from '../domain/doc';
import type { Services } from '../useCases/services';

export const MAX_BODY_BYTES = 64 * 1024;

export interface RequestContext {
  request: HttpRequest;
  services: Services;
  /** The authenticated caller; an empty one on routes declared `anonymous`. */
  caller: Caller;
}

export interface ResponseSpec {
  status: number;
  description: string;
  /** The body's shape; none for 204. */
  schema?: z.ZodType;
  /** Response headers worth declaring, name to description. */
  headers?: Record<string, string>;
  /**
   * Other success statuses answered with the same body and headers, status to description: a repeated
   * create answers 200 with what the first one made.
   */
  alternatives?: Record<number, string>;
}

/**
 * One operation: how Azure routes it, how its input is validated, and how it is documented. The same
 * object registers the function, feeds the local host and generates the API definition, so the three
 * never drift.
 */
export interface RouteDefinition<
  P extends z.ZodType = z.ZodType,
  Q extends z.ZodType = z.ZodType,
  B extends z.ZodType = z.ZodType,
> {
  /** Function name in Azure. */
  name: string;
  /** PascalCase operation id in the API definition, with Dataverse's verbs. */
  operationId: string;
  summary: string;
  description: string;
  method: HttpMethod;
  /** Route template relative to the /api prefix, in the Functions syntax: records/{recordid}/connections. */
  route: string;
  /** Routes that answer without a caller (health probe, API definition). */
  anonymous?: boolean;
  /** Operations a maker rarely needs are `advanced`; plumbing is `internal`. */
  visibility?: ConnectorVisibility;
  params?: P;
  query?: Q;
  body?: B;
  response: ResponseSpec;
  /** Whether the response is a page with `nextLink`. */
  pageable?: boolean;
  /** Whether the operation honours an If-Match header. */
  ifMatch?: boolean;
  /** Leave out of the connector definition (the definition itself, health probes). */
  hidden?: boolean;
  handler(
    context: RequestContext & { params: z.output<P>; query: z.output<Q>; body: z.output<B> },
  ): Promise<HttpResponseInit>;
}

/**
 * The single route table. The Azure Functions adapter (shared/hosts/azureFunctions) adds each function
 * module's routes to it as the module loads, and registers them with the Functions host; the node:http
 * adapter (shared/hosts/nodeHttp) serves the same table; the API definition is generated from it.
 */
export const routes: RouteDefinition[] = [];

function fieldErrors(error: z.ZodError, prefix?: string): FieldError[] {
  return error.issues.map((issue) => {
    const path = issue.path.map(String);
    if (issue.code === 'unrecognized_keys') {
      return {
        field: [...(prefix ? [prefix] : []), ...path].join('.') || '(body)',
        message: `unknown field(s): ${issue.keys.join(', ')}`,
      };
    }
    return { field: [...(prefix ? [prefix] : []), ...path].join('.') || '(body)', message: issue.message };
  });
}

export function parseWith<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw validationError(`The ${what} is not valid.`, fieldErrors(parsed.error));
  return parsed.data;
}

const noQuery = z.strictObject({});

/** Route, query and body, each validated by the schema the definition declares (and documents). */
export async function parseInput(
  definition: RouteDefinition,
  request: HttpRequest,
): Promise<{ params: unknown; query: unknown; body: unknown }> {
  const params = definition.params ? parseWith(definition.params, request.params, 'route') : {};
  // A route without query parameters refuses any, as list routes refuse unknown ones: a misspelt
  // filter must not silently widen an answer.
  const query = parseWith(definition.query ?? noQuery, Object.fromEntries(request.query.entries()), 'query string');
  const body = definition.body ? await parseBody(request, definition.body) : undefined;
  return { params, query, body };
}

/** Reads a JSON body: 415 unless JSON, 413 when over the limit, 400 when malformed or invalid. */
async function parseBody<S extends z.ZodType>(request: HttpRequest, schema: S): Promise<z.output<S>> {
  const contentType = request.headers.get('content-type') ?? '';
  if (!/^application\/([\w.+-]+\+)?json\b/i.test(contentType.trim())) {
    throw new DomainError(
      'unsupported-media-type',
      'UnsupportedMediaType',
      'Send the body as JSON with Content-Type: application/json.',
    );
  }
  const declaredLength = Number(request.headers.get('content-length') ?? 0);
  if (declaredLength > MAX_BODY_BYTES) throw tooLarge();
  const bytes = Buffer.from(await request.arrayBuffer());
  if (bytes.length > MAX_BODY_BYTES) throw tooLarge();
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw validationError('The body is not valid JSON.', [], 'MalformedJson');
  }
  return parseWith(schema, json, 'body');
}

const tooLarge = () =>
  new DomainError('payload-too-large', 'PayloadTooLarge', `The body is larger than ${MAX_BODY_BYTES} bytes.`);

export function json(status: number, body: unknown, headers: Record<string, string> = {}): HttpResponseInit {
  return { status, jsonBody: body, headers: { 'content-type': 'application/json; charset=utf-8', ...headers } };
}

export const noContent = (): HttpResponseInit => ({ status: 204 });

/**
 * A non-JSON body (the explorer's static files), with its own content type and cache headers and a
 * strong ETag: 304 without the body when the client's copy (If-None-Match) is current.
 */
export function fileResponse(
  request: HttpRequest,
  file: { body: Buffer; etag: string; headers: Record<string, string> },
): HttpResponseInit {
  const headers = { ...file.headers, etag: file.etag };
  const tags = (request.headers.get('if-none-match') ?? '').split(',').map((tag) => tag.trim().replace(/^W\//, ''));
  if (tags.includes(file.etag) || tags.includes('*')) return { status: 304, headers };
  return { status: 200, body: file.body, headers };
}

/** A list page: `{ value, count?, nextLink? }`, the next link absolute and carrying the request's own filters. */
export function listResponse(
  request: HttpRequest,
  value: unknown[],
  page: { skiptoken?: string; count?: number },
): HttpResponseInit {
  const body: { value: unknown[]; count?: number; nextLink?: string } = { value };
  if (page.count !== undefined) body.count = page.count;
  if (page.skiptoken) {
    const next = new URL(request.url);
    next.searchParams.set('skiptoken', page.skiptoken);
    next.searchParams.delete('count'); // the total is on the first page; later pages need not count again
    body.nextLink = next.toString();
  }
  return json(200, body);
}

import { HttpRequest, HttpResponse, InvocationContext, type LogLevel } from '@azure/functions';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { problemResponse } from '../shared/http/problem';
import { invoke, MAX_BODY_BYTES, type RouteDefinition, routes } from '../shared/http/route';

/**
 * Serves the registered functions over node:http where the Functions Core Tools are not installed.
 * It reads the same route table the Azure registration uses, so there is no second list of routes.
 */
const ROUTE_PREFIX = '/api/';

/** Matches a Functions route template ("records/{recordid}/connections") against a path. */
export function matchRoute(template: string, path: string): Record<string, string> | undefined {
  const expected = template.split('/').filter(Boolean);
  const actual = path.split('/').filter(Boolean);
  const params: Record<string, string> = {};
  for (let index = 0; index < Math.max(expected.length, actual.length); index++) {
    const pattern = expected[index];
    const segment = actual[index];
    if (pattern === undefined) return undefined;
    const parameter = /^\{([^}:?]+)(?::[^}?]+)?(\?)?\}$/.exec(pattern);
    if (parameter?.[1]) {
      if (segment === undefined) {
        if (parameter[2]) continue;
        return undefined;
      }
      try {
        params[parameter[1]] = decodeURIComponent(segment);
      } catch {
        params[parameter[1]] = segment; // not valid percent-encoding: the route's own validation rejects it
      }
      continue;
    }
    if (segment === undefined || pattern.toLowerCase() !== segment.toLowerCase()) return undefined;
  }
  return params;
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    size += chunk.length;
    // Past the limit, what has been read is enough for the route to answer 413.
    if (size > MAX_BODY_BYTES) break;
  }
  return Buffer.concat(chunks);
}

function flattenHeaders(request: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

/** One answer as it goes on the wire, for an observer (the tests' contract check sees every answer). */
export interface Exchange {
  method: string;
  /** Path and query as the client sent them. */
  url: string;
  requestHeaders: Record<string, string>;
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export type Observer = (exchange: Exchange) => void;

async function send(
  request: IncomingMessage,
  response: ServerResponse,
  init: ConstructorParameters<typeof HttpResponse>[0],
  observe: Observer | undefined,
): Promise<void> {
  const built = new HttpResponse(init);
  const body = Buffer.from(await built.arrayBuffer());
  const headers: Record<string, string> = {};
  built.headers.forEach((value, name) => (headers[name] = value));
  observe?.({ method: request.method ?? 'GET', url: request.url ?? '/', requestHeaders: flattenHeaders(request), status: built.status, headers, body });
  response.writeHead(built.status, { ...headers, 'content-length': String(body.length) });
  response.end(body);
}

export type LogThreshold = 'warning' | 'error';

const logsFrom = (threshold: LogThreshold) => (level: LogLevel, ...args: unknown[]): void => {
  if (level === 'error' || level === 'critical' || (threshold === 'warning' && level === 'warning')) console.error(`[${level}]`, ...args);
};

export interface LocalServerOptions {
  /** 'warning' also shows storage trouble the API answered with 503; tests that inject faults use 'error'. */
  log?: LogThreshold;
  /** Sees every answer the host sends. */
  observe?: Observer;
}

async function handle(table: RouteDefinition[], options: LocalServerOptions, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const reply = (init: ConstructorParameters<typeof HttpResponse>[0]) => send(request, response, init, options.observe);
  const url = new URL(request.url ?? '/', `http://${request.headers.host ?? '127.0.0.1'}`);
  const path = url.pathname.startsWith(ROUTE_PREFIX) ? url.pathname.slice(ROUTE_PREFIX.length) : undefined;
  const candidates = path === undefined ? [] : table.flatMap((route) => {
    const params = matchRoute(route.route, path);
    return params ? [{ route, params }] : [];
  });
  if (candidates.length === 0) {
    await reply(problemResponse(404, 'RouteNotFound', `No API route matches ${url.pathname}.`));
    request.resume();
    return;
  }
  const method = (request.method ?? 'GET').toUpperCase();
  const match = candidates.find(({ route }) => route.method === method);
  if (!match) {
    const allow = [...new Set(candidates.map(({ route }) => route.method))].join(', ');
    await reply(problemResponse(405, 'MethodNotAllowed', `${method} is not allowed here; use ${allow}.`, {}, { allow }));
    request.resume();
    return;
  }
  const body = await readBody(request);
  const functionRequest = new HttpRequest({
    method,
    url: url.toString(),
    headers: flattenHeaders(request),
    query: Object.fromEntries(url.searchParams),
    params: match.params,
    ...(body.length > 0 ? { body: { bytes: body } } : {}),
  });
  const context = new InvocationContext({ functionName: match.route.name, invocationId: randomUUID(), logHandler: logsFrom(options.log ?? 'warning') });
  await reply(await invoke(match.route, functionRequest, context));
}

export function createLocalServer(table: RouteDefinition[] = routes, options: LocalServerOptions = {}): Server {
  return createServer((request, response) => {
    handle(table, options, request, response).catch(async (error: unknown) => {
      console.error('local host failed to serve a request', error);
      if (!response.headersSent) await send(request, response, problemResponse(500, 'InternalError', 'The local host failed.'), options.observe);
      else response.destroy();
    });
  });
}

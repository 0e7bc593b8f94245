import { HttpRequest, HttpResponse, InvocationContext, type LogLevel } from '@azure/functions';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { PROBLEM_CONTENT_TYPE, problemResponse } from '../../api/problem';
import { MAX_BODY_BYTES, type RouteDefinition, routes } from '../../api/route';
import { invoke } from '../invoke';

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

/**
 * Reads a body up to the limit. A body declared larger is not read at all (the route answers 413 from
 * Content-Length alone); one that grows past the limit is read just past it. Either way the rest stays
 * unread, for `send` to drain and close.
 */
function readBody(request: IncomingMessage): Promise<Buffer> {
  if (Number(request.headers['content-length'] ?? 0) > MAX_BODY_BYTES) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = () => {
      request.off('data', collect).off('end', finish).off('error', reject);
      request.pause();
      resolve(Buffer.concat(chunks));
    };
    const collect = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size > MAX_BODY_BYTES) finish();
    };
    request.on('data', collect).once('end', finish).once('error', reject);
  });
}

// After an answer to a request whose body was not read to its end, what is left is read and dropped,
// up to these bounds, so the client can finish sending and read the answer; past them the connection
// is cut.
const MAX_DRAIN_BYTES = 16 * 1024 * 1024;
const MAX_DRAIN_MS = 10_000;

/**
 * Ends a connection whose request was answered before its body was read: the answer said
 * `Connection: close`, so the client opens a new connection for its next request; reading the rest
 * first lets the connection close with a FIN, where closing with unread data would reset it and could
 * destroy the answer before the client reads it.
 */
function drainThenClose(request: IncomingMessage): void {
  let drained = 0;
  const cut = () => request.socket.destroy();
  const timer = setTimeout(cut, MAX_DRAIN_MS);
  timer.unref();
  request.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > MAX_DRAIN_BYTES) cut();
  });
  request.once('close', () => clearTimeout(timer));
  request.resume();
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
  // A body left unread (too large, or sent where none is read) cannot share the connection with a next request.
  if (!request.complete) headers.connection = 'close';
  observe?.({
    method: request.method ?? 'GET',
    url: request.url ?? '/',
    requestHeaders: flattenHeaders(request),
    status: built.status,
    headers,
    body,
  });
  response.writeHead(built.status, { ...headers, 'content-length': String(body.length) });
  response.end(body);
  if (!request.complete) drainThenClose(request);
}

// RFC 3986's host (a name, an IPv4 address or a bracketed IPv6 literal) and an optional port up to 65535.
const hostPattern =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?$/;

/**
 * The URL a request addresses, or undefined when its Host header is not a host: the header is the
 * client's to send, and it ends up in Location headers and nextLinks, so it is checked, never trusted.
 */
export function requestUrl(path: string | undefined, host: string | undefined): URL | undefined {
  const match = host === undefined ? null : hostPattern.exec(host);
  if (!match || Number(match[1] ?? 0) > 65535 || !path?.startsWith('/')) return undefined;
  try {
    return new URL(path, `http://${host}`);
  } catch {
    return undefined;
  }
}

export type LogThreshold = 'warning' | 'error';

const logsFrom =
  (threshold: LogThreshold) =>
  (level: LogLevel, ...args: unknown[]): void => {
    if (level === 'error' || level === 'critical' || (threshold === 'warning' && level === 'warning'))
      console.error(`[${level}]`, ...args);
  };

export interface LocalServerOptions {
  /** 'warning' also shows storage trouble the API answered with 503; tests that inject faults use 'error'. */
  log?: LogThreshold;
  /** Sees every answer the host sends. */
  observe?: Observer;
}

async function handle(
  table: RouteDefinition[],
  options: LocalServerOptions,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const reply = (init: ConstructorParameters<typeof HttpResponse>[0]) => send(request, response, init, options.observe);
  const url = requestUrl(request.url, request.headers.host);
  if (!url) {
    await reply(problemResponse(400, 'BadRequest', 'The request has no valid Host header or request target.'));
    return;
  }
  const path = url.pathname.startsWith(ROUTE_PREFIX) ? url.pathname.slice(ROUTE_PREFIX.length) : undefined;
  const candidates =
    path === undefined
      ? []
      : table.flatMap((route) => {
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
    await reply(
      problemResponse(405, 'MethodNotAllowed', `${method} is not allowed here; use ${allow}.`, {}, { allow }),
    );
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
  const context = new InvocationContext({
    functionName: match.route.name,
    invocationId: randomUUID(),
    logHandler: logsFrom(options.log ?? 'warning'),
  });
  await reply(await invoke(match.route, functionRequest, context));
}

/** What node:http's parser refused (a malformed request line or header) answered as a problem, then closed. */
function refuseMalformed(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (!socket.writable || (error.code !== undefined && ['ECONNRESET', 'EPIPE'].includes(error.code))) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({
    type: 'about:blank',
    title: 'Bad Request',
    status: 400,
    detail: 'The request is not well-formed HTTP.',
    code: 'BadRequest',
  });
  socket.end(
    `HTTP/1.1 400 Bad Request\r\ncontent-type: ${PROBLEM_CONTENT_TYPE}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

export function createLocalServer(table: RouteDefinition[] = routes, options: LocalServerOptions = {}): Server {
  // A missing Host header is answered by `handle` as a problem, not by node:http with an empty 400.
  const server = createServer({ requireHostHeader: false }, (request, response) => {
    handle(table, options, request, response).catch(async (error: unknown) => {
      console.error('local host failed to serve a request', error);
      if (!response.headersSent)
        await send(request, response, problemResponse(500, 'InternalError', 'The local host failed.'), options.observe);
      else response.destroy();
    });
  });
  server.on('clientError', refuseMalformed);
  return server;
}

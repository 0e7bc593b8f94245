// Dev, load: an HTTP proxy between the app and Azurite that fails, delays or cuts chosen storage requests.
import { createServer, request as forward, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A small HTTP proxy between the app and Azurite that can fail, delay or cut chosen requests, so tests
 * can drive every failure point of an operation. It also counts what passes, as the wire sees it.
 */
export interface SeenRequest {
  method: string;
  /** Decoded path, e.g. /devstoreaccount1/Connections(PartitionKey='…',RowKey='…') or /devstoreaccount1/$batch. */
  path: string;
  /** Request body (a $batch names the partition and entities it writes). */
  body: string;
}

export interface FaultRule {
  match: (request: SeenRequest) => boolean;
  /**
   * fail: answer `status` without forwarding; cut: drop the connection without forwarding;
   * cut-after: forward (storage applies it) and drop the connection instead of answering, as a
   * timeout after the write would; delay: forward after `delayMs`.
   */
  action: 'fail' | 'cut' | 'cut-after' | 'delay';
  status?: number;
  delayMs?: number;
  /** Let this many matching requests through before acting. */
  skip?: number;
  /** Act on this many matching requests (default: every one). */
  times?: number;
}

export interface FaultProxy {
  port: number;
  /** The connection string of the target with its table endpoint pointed at the proxy. */
  connectionString: string;
  add: (rule: FaultRule) => void;
  clear: () => void;
  /** Requests forwarded or acted on since the last reset. */
  seen: SeenRequest[];
  resetSeen: () => void;
  close: () => Promise<void>;
}

interface ActiveRule extends FaultRule {
  matched: number;
  acted: number;
}

export const isBatch = (request: SeenRequest): boolean => request.method === 'POST' && request.path.endsWith('/$batch');
function decoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Whether a request (a single operation, or any operation of a $batch) addresses a partition. */
export const touchesPartition =
  (partitionKey: string) =>
  (request: SeenRequest): boolean => {
    const body = decoded(request.body);
    return (
      request.path.includes(`PartitionKey='${partitionKey}'`) ||
      body.includes(`PartitionKey='${partitionKey}'`) ||
      body.includes(`"PartitionKey":"${partitionKey}"`)
    );
  };
export const inTable =
  (table: string) =>
  (request: SeenRequest): boolean =>
    request.path.includes(`/${table}`);

async function readBody(message: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of message as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

export async function startFaultProxy(targetConnectionString: string): Promise<FaultProxy> {
  const endpoint = /TableEndpoint=(http:\/\/[^;]+)/.exec(targetConnectionString)?.[1];
  if (!endpoint) throw new Error('the connection string has no http TableEndpoint');
  const target = new URL(endpoint);
  let rules: ActiveRule[] = [];
  const seen: SeenRequest[] = [];

  const server: Server = createServer((incoming, outgoing) => void relay(incoming, outgoing));
  async function relay(incoming: IncomingMessage, outgoing: ServerResponse): Promise<void> {
    const body = await readBody(incoming);
    const seenRequest: SeenRequest = {
      method: incoming.method ?? 'GET',
      path: decodeURIComponent((incoming.url ?? '/').split('?')[0] ?? '/'),
      body: body.toString('utf8'),
    };
    seen.push(seenRequest);
    const rule = rules.find((candidate) => {
      if (!candidate.match(seenRequest)) return false;
      candidate.matched++;
      return (
        candidate.matched > (candidate.skip ?? 0) && candidate.acted < (candidate.times ?? Number.POSITIVE_INFINITY)
      );
    });
    if (rule) rule.acted++;
    if (rule?.action === 'fail') {
      outgoing.writeHead(rule.status ?? 503, {
        'content-type': 'application/json',
        ...(rule.status === 503 || rule.status === 429 ? { 'retry-after': '1' } : {}),
      });
      outgoing.end(
        JSON.stringify({ 'odata.error': { code: 'InjectedFault', message: { value: 'injected by the fault proxy' } } }),
      );
      return;
    }
    if (rule?.action === 'cut') {
      incoming.socket.destroy();
      return;
    }
    if (rule?.action === 'delay') await new Promise((resolve) => setTimeout(resolve, rule.delayMs ?? 1000));
    const upstream = forward(
      {
        host: target.hostname,
        port: target.port,
        method: incoming.method,
        path: incoming.url,
        headers: { ...incoming.headers, host: target.host },
      },
      (response) => {
        if (rule?.action === 'cut-after') {
          response.resume();
          response.on('end', () => incoming.socket.destroy());
          return;
        }
        outgoing.writeHead(response.statusCode ?? 502, response.headers);
        response.pipe(outgoing);
      },
    );
    upstream.on('error', () => incoming.socket.destroy());
    upstream.end(body);
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    connectionString: targetConnectionString.replace(
      /TableEndpoint=http:\/\/[^/;]+/,
      `TableEndpoint=http://127.0.0.1:${port}`,
    ),
    add: (rule) => rules.push({ ...rule, matched: 0, acted: 0 }),
    clear: () => {
      rules = [];
    },
    seen,
    resetSeen: () => {
      seen.length = 0;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { expect, inject } from 'vitest';
import { encodePrincipal } from '../../shared/api/principal';
import { resetServices } from '../../shared/useCases/services';
import { createLocalServer, type Exchange } from '../../shared/hosts/nodeHttp/server';
import { routes } from '../../shared/api/route';
import { loadFunctions } from '../../shared/hosts/nodeHttp/loadFunctions';
import { ContractChecker } from './contract';
import type { Json, LooseJson } from './json';
import { uniqueTableName } from './storage';

export interface TestApi {
  baseUrl: string;
  /** The API definition the app serves, as every answer is checked against it. */
  definition: Json;
  /** Closes the host; fails when an answer no `call` claimed broke the contract (raw sockets). */
  close: () => Promise<void>;
}

/** Names a request, so the contract breaches of its answer reach the `call` that sent it. */
const CALL_HEADER = 'x-test-call';

/** Contract breaches per running host (by origin), keyed by the call that received them ('' for raw requests). */
const breachesByOrigin = new Map<string, Map<string, string[]>>();

function record(breaches: Map<string, string[]>, checker: ContractChecker | undefined, exchange: Exchange): void {
  if (!checker) return;
  const found = checker.check(exchange);
  if (found.length === 0) return;
  const id = exchange.requestHeaders[CALL_HEADER] ?? '';
  breaches.set(id, [...(breaches.get(id) ?? []), ...found]);
}

/**
 * The app as clients meet it: every function module loaded, served by the local host on a real socket
 * (loopback, free port), against Azurite, with a table of its own. Every answer the host sends is
 * checked against the definition it serves (test/support/contract.ts).
 */
export async function startApi(env: Record<string, string> = {}): Promise<TestApi> {
  Object.assign(process.env, {
    DataTables__connectionString: inject('azuriteConnectionString'),
    TABLE_NAME_PREFIX: uniqueTableName('http'),
    LOCAL_DEVELOPMENT_MODE: 'true',
    WEBSITE_AUTH_ENABLED: '',
    ...env,
  });
  resetServices();
  await loadFunctions(join(__dirname, '..', '..', 'functions'));
  const breaches = new Map<string, string[]>();
  let checker: ContractChecker | undefined;
  // Warnings are the 503s the fault tests provoke on purpose; errors still show.
  const server: Server = createLocalServer(routes, {
    log: 'error',
    observe: (exchange) => record(breaches, checker, exchange),
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  const served = await fetch(`${origin}/api/swagger.json`);
  if (served.status !== 200) throw new Error(`the host serves no API definition (${served.status})`);
  const definition = (await served.json()) as Json;
  checker = new ContractChecker(
    definition,
    routes.filter((route) => route.hidden).map((route) => route.route),
  );
  breachesByOrigin.set(origin, breaches);
  return {
    baseUrl: `${origin}/api`,
    definition,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      breachesByOrigin.delete(origin);
      const unclaimed = [...breaches.values()].flat();
      if (unclaimed.length > 0) throw new Error(`answers that break the API definition:\n${unclaimed.join('\n')}`);
    },
  };
}

export const principal = (id: string, options: { teams?: string[]; roles?: string[] } = {}) => ({
  'x-ms-client-principal': encodePrincipal({ id, ...options }),
});

export async function call(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: unknown; rawBody?: string } = {},
): Promise<{ status: number; headers: Headers; body: LooseJson }> {
  const id = randomUUID();
  const headers: Record<string, string> = { ...init.headers, [CALL_HEADER]: id };
  let body: string | undefined = init.rawBody;
  if (init.body !== undefined) {
    body = JSON.stringify(init.body);
    headers['content-type'] ??= 'application/json';
  }
  const response = await fetch(url, { method: init.method ?? 'GET', headers, ...(body !== undefined ? { body } : {}) });
  const text = await response.text();
  const breaches = breachesByOrigin.get(new URL(url).origin);
  const found = breaches?.get(id);
  if (found) {
    breaches?.delete(id);
    throw new Error(`the answer breaks the API definition:\n${found.join('\n')}`);
  }
  const type = response.headers.get('content-type') ?? '';
  return {
    status: response.status,
    headers: response.headers,
    body: text && type.includes('json') ? JSON.parse(text) : text,
  };
}

/** An RFC 9457 problem with the given status (and code). */
export function expectProblem(
  response: { status: number; headers: Headers; body: LooseJson },
  status: number,
  code?: string,
): void {
  expect(response.status, JSON.stringify(response.body)).toBe(status);
  expect(response.headers.get('content-type')).toContain('application/problem+json');
  expect(response.body).toMatchObject({
    status,
    title: expect.any(String),
    detail: expect.any(String),
    code: expect.any(String),
  });
  if (code) expect(response.body.code).toBe(code);
}

import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { expect, inject } from 'vitest';
import { encodePrincipal } from '../../shared/caller';
import { resetServices } from '../../shared/services';
import { createLocalServer } from '../../scripts/localHost';
import { routes } from '../../shared/http/route';
import { loadFunctions } from '../../scripts/loadFunctions';
import { uniqueTableName } from './storage';

export interface TestApi {
  baseUrl: string;
  close: () => Promise<void>;
}

/**
 * The app as clients meet it: every function module loaded, served by the local host on a real socket
 * (loopback, free port), against Azurite, with a table of its own.
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
  // Warnings are the 503s the fault tests provoke on purpose; errors still show.
  const server: Server = createLocalServer(routes, 'error');
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/api`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export const principal = (id: string, options: { teams?: string[]; roles?: string[] } = {}) => ({
  'x-ms-client-principal': encodePrincipal({ id, ...options }),
});

export async function call(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: unknown; rawBody?: string } = {},
): Promise<{ status: number; headers: Headers; body: any }> {
  const headers: Record<string, string> = { ...init.headers };
  let body: string | undefined = init.rawBody;
  if (init.body !== undefined) {
    body = JSON.stringify(init.body);
    headers['content-type'] ??= 'application/json';
  }
  const response = await fetch(url, { method: init.method ?? 'GET', headers, ...(body !== undefined ? { body } : {}) });
  const text = await response.text();
  const type = response.headers.get('content-type') ?? '';
  return { status: response.status, headers: response.headers, body: text && type.includes('json') ? JSON.parse(text) : text };
}

/** An RFC 9457 problem with the given status (and code). */
export function expectProblem(response: { status: number; headers: Headers; body: any }, status: number, code?: string): void {
  expect(response.status, JSON.stringify(response.body)).toBe(status);
  expect(response.headers.get('content-type')).toContain('application/problem+json');
  expect(response.body).toMatchObject({ status, title: expect.any(String), detail: expect.any(String), code: expect.any(String) });
  if (code) expect(response.body.code).toBe(code);
}

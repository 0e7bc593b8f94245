import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, expectProblem, startApi, type TestApi } from '../support/http';

/** The explorer's static files as the local host (npm start) serves them, over a real socket. */
let api: TestApi;

beforeAll(async () => {
  api = await startApi();
});
afterAll(async () => api.close());

const get = (path: string, headers: Record<string, string> = {}) => call(`${api.baseUrl}${path}`, { headers });

describe('GET /api/explorer', () => {
  it('serves the page without a caller, in local mode, with a strict content security policy and revalidation', async () => {
    const page = await get('/explorer?record=aaaaaaaa-0000-4000-8000-000000000001');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('cache-control')).toBe('private, no-cache');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    const policy = page.headers.get('content-security-policy') ?? '';
    expect(policy).toContain("default-src 'none'");
    expect(policy).toContain("script-src 'self'");
    expect(policy).toContain("connect-src 'self'");
    expect(policy).toContain("frame-ancestors 'none'");
    expect(policy).not.toContain('unsafe');
    expect(page.body).toContain('<html lang="en" data-mode="local">');
    expect(page.body).not.toContain('%EXPLORER_MODE%');
    expect((await get('/explorer/index.html')).body).toBe(page.body);
  });

  it('serves every script and style sheet the page names, cytoscape included, with its content type', async () => {
    const page = (await get('/explorer')).body as string;
    const assets = [...page.matchAll(/(?:src|href)="(\/api\/explorer\/[^"]+)"/g)].map((match) => match[1] as string);
    expect(assets.sort()).toEqual([
      '/api/explorer/cytoscape.min.js',
      '/api/explorer/explorer.css',
      '/api/explorer/explorer.js',
    ]);
    const types: Record<string, string> = { js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };
    for (const asset of [...assets, '/api/explorer/palette.js']) {
      const response = await call(new URL(asset, api.baseUrl).toString());
      expect(response.status, asset).toBe(200);
      expect(response.headers.get('content-type'), asset).toBe(types[asset.split('.').at(-1) as string]);
      expect(response.headers.get('etag'), asset).toMatch(/^"[\w-]+"$/);
    }
    const library = await get('/explorer/cytoscape.min.js');
    expect(library.headers.get('cache-control')).toBe('private, max-age=86400');
    expect(library.body.length).toBe(
      readFileSync(join(__dirname, '..', '..', 'node_modules', 'cytoscape', 'dist', 'cytoscape.min.js'), 'utf8').length,
    );
  });

  it("answers 304 without a body when the browser's copy is current", async () => {
    const first = await get('/explorer/explorer.js');
    const etag = first.headers.get('etag') ?? '';
    const again = await get('/explorer/explorer.js', { 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect(again.body).toBe('');
    expect((await get('/explorer/explorer.js', { 'if-none-match': '"stale"' })).status).toBe(200);
    expect(
      (await get('/explorer', { 'if-none-match': `W/${(await get('/explorer')).headers.get('etag')}` })).status,
    ).toBe(304);
  });

  it('serves nothing but its own files: no other name, no path, no directory traversal', async () => {
    for (const path of [
      '/explorer/package.json',
      '/explorer/palette.d.ts',
      '/explorer/..%2F..%2Fpackage.json',
      '/explorer/%2e%2e%2fpackage.json',
      '/explorer/..%5C..%5Cpackage.json',
      '/explorer/constructor',
      '/explorer/__proto__',
      '/explorer/%00',
    ]) {
      expectProblem(await get(path), 404);
    }
    expectProblem(await get('/explorer/vendor/cytoscape.min.js'), 404, 'RouteNotFound');
    expectProblem(await call(`${api.baseUrl}/explorer`, { method: 'POST', body: {} }), 405, 'MethodNotAllowed');
  });
});

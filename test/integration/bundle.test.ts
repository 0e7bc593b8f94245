import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundle } from '../../dev/local/bundle';

/**
 * The deployable bundle (npm run bundle) serves the connection explorer from its own folder: built into
 * a folder outside the repository (no node_modules to fall back on), loaded in a separate Node process
 * the way the Functions worker loads it, and asked for the page and for cytoscape.
 */
const repo = join(__dirname, '..', '..');
let folder: string;
let main: string;

beforeAll(async () => {
  folder = mkdtempSync(join(tmpdir(), 'rc-bundle-'));
  main = await bundle(join(folder, 'deploy'));
}, 120_000);
afterAll(() => rmSync(folder, { recursive: true, force: true }));

/** Serves GET requests from the bundle in a child process; returns what each answered. */
function serveFromBundle(
  paths: string[],
): { status: number; type: string; length: number; head: string; cache: string }[] {
  const script = `
    const { HttpRequest, InvocationContext } = require(${JSON.stringify(join(repo, 'node_modules', '@azure', 'functions'))});
    const { invoke, routes } = require(${JSON.stringify(main)});
    const match = (template, path) => {
      const t = template.split('/'), p = path.split('/');
      if (t.length !== p.length) return undefined;
      const params = {};
      for (let i = 0; i < t.length; i++) {
        if (/^{.*}$/.test(t[i])) params[t[i].slice(1, -1)] = p[i];
        else if (t[i] !== p[i]) return undefined;
      }
      return params;
    };
    (async () => {
      const out = [];
      for (const path of ${JSON.stringify(paths)}) {
        const found = routes.map((route) => ({ route, params: match(route.route, path) })).find((entry) => entry.params && entry.route.method === 'GET');
        const request = new HttpRequest({ method: 'GET', url: 'https://app.example/api/' + path, headers: {}, params: found.params });
        const context = new InvocationContext({ functionName: found.route.name });
        const response = await invoke(found.route, request, context);
        const body = Buffer.isBuffer(response.body) || response.body instanceof Uint8Array ? Buffer.from(response.body) : Buffer.from(JSON.stringify(response.jsonBody ?? response.body ?? ''));
        out.push({ status: response.status, type: response.headers['content-type'], cache: response.headers['cache-control'] ?? '', length: body.length, head: body.subarray(0, 400).toString('utf8') });
      }
      process.stdout.write(JSON.stringify(out));
    })().catch((error) => { console.error(error); process.exit(1); });
  `;
  const env = { PATH: process.env.PATH ?? '', DataTables__tableServiceUri: 'https://account.table.core.windows.net' };
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: folder, env, encoding: 'utf8' }));
}

describe('npm run bundle', () => {
  it("copies the explorer's files and cytoscape's browser build beside the bundle", () => {
    for (const file of ['index.html', 'explorer.js', 'explorer.css', 'palette.js', 'vendor/cytoscape.min.js']) {
      expect(existsSync(join(folder, 'deploy', 'explorer', file)), file).toBe(true);
    }
  });

  it('keeps cytoscape out of the API code: it is served as a file, never imported', () => {
    const code = readFileSync(main, 'utf8');
    const library = readFileSync(join(folder, 'deploy', 'explorer', 'vendor', 'cytoscape.min.js'), 'utf8');
    expect(library).toContain('Cytoscape Consortium');
    expect(code).not.toContain('Cytoscape Consortium');
    expect(readFileSync(`${main}.LEGAL.txt`, 'utf8')).not.toMatch(/cytoscape/i);
    expect(code.length).toBeLessThan(1.6 * 1024 * 1024);
  });

  it('serves the page and cytoscape from the deployed folder, in Azure mode, with their content types', () => {
    const [page, library, script, missing] = serveFromBundle([
      'explorer',
      'explorer/cytoscape.min.js',
      'explorer/explorer.js',
      'explorer/package.json',
    ]);
    expect(page).toMatchObject({ status: 200, type: 'text/html; charset=utf-8', cache: 'private, no-cache' });
    expect(page?.head).toContain('data-mode="azure"');
    expect(library).toMatchObject({
      status: 200,
      type: 'text/javascript; charset=utf-8',
      cache: 'private, max-age=86400',
    });
    expect(library?.length).toBe(
      readFileSync(join(repo, 'node_modules', 'cytoscape', 'dist', 'cytoscape.min.js')).length,
    );
    expect(script).toMatchObject({ status: 200, type: 'text/javascript; charset=utf-8' });
    expect(missing?.status).toBe(404);
  });
});

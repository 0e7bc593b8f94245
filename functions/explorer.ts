import { join } from 'node:path';
import { z } from 'zod';
import { fileResponse } from '../shared/api/route';
import { registerRoute } from '../shared/hosts/azureFunctions/register';
import { appRoot, type LoadedFile, StaticFiles } from '../shared/api/staticFiles';
import type { Settings } from '../shared/config/settings';

/**
 * The connection explorer: a static page and its scripts, served by the app itself from its explorer/
 * folder (no CDN, no second web host). cytoscape is only ever read as a file here, never imported, so
 * it costs the API's cold start nothing. The routes are anonymous to the app: the page holds no data, and
 * a browser cannot send the principal header when it navigates. In Azure, App Service Authentication
 * still requires a signed-in session for them like for every path but the health probe and the API
 * definition; the page's API calls then carry that session.
 */
const root = appRoot(__dirname);
const folder = join(root, 'explorer');
const revalidate = 'private, no-cache';
const page = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
};
const files = new StaticFiles({
  'index.html': {
    paths: [join(folder, 'index.html')],
    contentType: 'text/html; charset=utf-8',
    cacheControl: revalidate,
    headers: page,
  },
  'explorer.js': {
    paths: [join(folder, 'explorer.js')],
    contentType: 'text/javascript; charset=utf-8',
    cacheControl: revalidate,
  },
  'palette.js': {
    paths: [join(folder, 'palette.js')],
    contentType: 'text/javascript; charset=utf-8',
    cacheControl: revalidate,
  },
  'explorer.css': {
    paths: [join(folder, 'explorer.css')],
    contentType: 'text/css; charset=utf-8',
    cacheControl: revalidate,
  },
  // A copy made by `npm run bundle`; from source and tsc's output, the installed package.
  'cytoscape.min.js': {
    paths: [
      join(folder, 'vendor', 'cytoscape.min.js'),
      join(root, 'node_modules', 'cytoscape', 'dist', 'cytoscape.min.js'),
    ],
    contentType: 'text/javascript; charset=utf-8',
    cacheControl: 'private, max-age=86400',
  },
});

/** Local development mode: the page offers its caller picker and sends the principal header itself. */
const modeOf = (settings: Settings): 'local' | 'azure' =>
  settings.LOCAL_DEVELOPMENT_MODE && !settings.WEBSITE_AUTH_ENABLED ? 'local' : 'azure';

/** A file; the page says which mode it runs in (the same under both of its URLs). */
function fileFor(name: string, settings: Settings): LoadedFile {
  if (name !== 'index.html') return files.get(name);
  const mode = modeOf(settings);
  return files.get(name, { key: mode, rewrite: (html) => html.replaceAll('%EXPLORER_MODE%', mode) });
}

registerRoute({
  name: 'explorer',
  operationId: 'GetExplorer',
  summary: 'Open the connection explorer',
  description:
    "Serves the connection explorer page, which draws a record's connections as a graph with charts and a table.",
  method: 'GET',
  route: 'explorer',
  // The page keeps its state (record, filters) in the address and reads it itself, so the whole query string is the page's own.
  query: z.looseObject({}),
  anonymous: true,
  hidden: true,
  response: { status: 200, description: 'The page (text/html).' },
  handler: async ({ request, services }) => fileResponse(request, fileFor('index.html', services.settings)),
});

registerRoute({
  name: 'explorerFile',
  operationId: 'GetExplorerFile',
  summary: 'Get a file of the connection explorer',
  description: "Serves the explorer's scripts and style sheet, cytoscape included, from the app's own files.",
  method: 'GET',
  route: 'explorer/{file}',
  params: z.object({ file: z.string().max(200) }),
  anonymous: true,
  hidden: true,
  response: { status: 200, description: 'The file.' },
  handler: async ({ request, services, params: { file } }) => fileResponse(request, fileFor(file, services.settings)),
});

import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { appRoot } from '../../shared/api/staticFiles';

/**
 * `npm run bundle`: the deployable app in deploy/: every function module bundled into one file (it
 * imports several times faster than node_modules, which matters for cold starts), host.json and a
 * package.json naming it. `@azure/functions-core` stays external: the Functions worker provides it.
 * The connection explorer's files go beside it in explorer/, with cytoscape's browser build copied from
 * node_modules into explorer/vendor/: the page is served from the app's own files, and the graph
 * library is never part of the API's bundle.
 */
const root = appRoot(__dirname);
const defaultOut = join(root, 'deploy');

/** The explorer's page, scripts and style sheet, and the cytoscape build it loads, into `folder`. */
export function copyExplorer(folder: string): string[] {
  const source = join(root, 'explorer');
  mkdirSync(join(folder, 'vendor'), { recursive: true });
  const files = readdirSync(source)
    .filter((file) => /\.(html|js|css)$/.test(file))
    .sort();
  for (const file of files) copyFileSync(join(source, file), join(folder, file));
  copyFileSync(
    join(root, 'node_modules', 'cytoscape', 'dist', 'cytoscape.min.js'),
    join(folder, 'vendor', 'cytoscape.min.js'),
  );
  return [...files, 'vendor/cytoscape.min.js'];
}

export async function bundle(out = defaultOut): Promise<string> {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, 'dist'), { recursive: true });
  const modules = readdirSync(join(root, 'functions'))
    .filter((file) => file.endsWith('.ts'))
    .sort();
  // The route table and runner are exported too (the Functions worker ignores them), so a test can
  // serve requests from the very file that is deployed.
  const entry = [
    ...modules.map((file) => `import './functions/${file.replace(/\.ts$/, '')}';`),
    "export { routes } from './shared/api/route';",
    "export { invoke } from './shared/hosts/invoke';",
  ].join('\n');
  const outfile = join(out, 'dist', 'main.js');
  await build({
    stdin: { contents: entry, resolveDir: root, sourcefile: 'app.ts', loader: 'ts' },
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['@azure/functions-core'],
    outfile,
    minify: true,
    sourcemap: 'linked',
    legalComments: 'linked',
    logLevel: 'warning',
  });
  copyFileSync(join(root, 'host.json'), join(out, 'host.json'));
  copyExplorer(join(out, 'explorer'));
  writeFileSync(
    join(out, 'package.json'),
    `${JSON.stringify({ name: 'record-connections', private: true, main: 'dist/main.js' }, null, 2)}\n`,
  );
  return outfile;
}

if (require.main === module) {
  bundle().then(
    (file) => console.log(`Bundled the functions into ${file}`),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}

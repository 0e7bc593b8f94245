import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * `npm run bundle`: the deployable app in deploy/: every function module bundled into one file (it
 * imports several times faster than node_modules, which matters for cold starts), host.json and a
 * package.json naming it. `@azure/functions-core` stays external: the Functions worker provides it.
 */
const root = join(__dirname, '..', '..');
const out = join(root, 'deploy');

export async function bundle(): Promise<string> {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, 'dist'), { recursive: true });
  const modules = readdirSync(join(root, 'functions')).filter((file) => file.endsWith('.ts')).sort();
  const entry = modules.map((file) => `import './functions/${file.replace(/\.ts$/, '')}';`).join('\n');
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
  writeFileSync(join(out, 'package.json'), `${JSON.stringify({ name: 'record-connections', private: true, main: 'dist/main.js' }, null, 2)}\n`);
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

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { readSettings } from '../../shared/config/settings';
import { appRoot } from '../../shared/api/staticFiles';
import { createServices } from '../../shared/useCases/services';
import { type RunningAzurite, startAzurite } from './azurite';
import { explorerLink, seedDemo } from './demoData';
import { createLocalServer } from '../../shared/hosts/nodeHttp/server';
import { loadFunctions } from '../../shared/hosts/nodeHttp/loadFunctions';
import { startTimers } from '../../shared/hosts/nodeHttp/timers';

/**
 * `npm start`: an in-memory Azurite on free loopback ports, the tables created, and the API on
 * http://localhost:7071/api/, served by `func start` where the Core Tools are installed and by the
 * local node:http host otherwise. Local development mode is on, so a hand-made principal header is
 * trusted: never run this in front of real users.
 */
const root = appRoot(__dirname);

function localSettings(): Record<string, string> {
  const file = ['local.settings.json', 'local.settings.sample.json'].map((name) => join(root, name)).find(existsSync);
  if (!file) return {};
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as { Values?: Record<string, string> };
  return parsed.Values ?? {};
}

function coreToolsAvailable(): boolean {
  const probe = spawnSync('func', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return probe.status === 0 && /^\d+\./.test(probe.stdout.trim());
}

/** The connection explorer's link, on the walkthrough's account. */
const explorerBanner = (port: number): string[] => [
  `Connection explorer: ${explorerLink(`http://localhost:${port}/api`)}`,
  "  (local development mode: the page's caller picker makes the x-ms-client-principal header; it acts as the README walkthrough's user by default)",
];

export interface LocalApp {
  azurite: RunningAzurite;
  env: NodeJS.ProcessEnv;
}

/** Azurite in memory, the settings pointing at it, the tables created and (unless `seed` is false) the demo records. */
export async function prepareLocal(seed: boolean, log: (line: string) => void): Promise<LocalApp> {
  const azurite = await startAzurite({ services: 'all' });
  const env: NodeJS.ProcessEnv = {
    ...localSettings(),
    ...process.env,
    // The emulator's ports are chosen at start, so its connection string always comes from here.
    DataTables__connectionString: azurite.connectionString,
    AzureWebJobsStorage: azurite.connectionString,
    LOCAL_DEVELOPMENT_MODE: 'true',
  };
  Object.assign(process.env, env);
  const services = createServices(readSettings(env));
  await services.ready();
  if (seed) await seedDemo(services);
  log(
    `Azurite (in memory) on 127.0.0.1, table port ${azurite.tablePort}; tables created${seed ? ', demo records loaded (npm start -- --empty for none)' : ''}.`,
  );
  log(`To check the tables meanwhile: DataTables__connectionString='${azurite.connectionString}' npm run check`);
  return { azurite, env };
}

/** The registered functions on the local node:http host; resolves with the port once it listens. */
export async function serveLocal(port: number, log: (line: string) => void): Promise<{ server: Server; port: number }> {
  await loadFunctions(join(__dirname, '..', '..', 'functions'));
  const server = createLocalServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  log(`API ready at http://localhost:${actual}/api/ (try GET /api/health)`);
  // The timer functions run here too, from the same registration as in Azure.
  const running = startTimers();
  server.once('close', () => running.stop());
  for (const { name, next } of running.scheduled) log(`Timer ${name}: next run ${next?.toISOString() ?? 'never'}`);
  for (const line of explorerBanner(actual)) log(line);
  return { server, port: actual };
}

async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 7071);
  const { azurite, env } = await prepareLocal(!process.argv.includes('--empty'), console.log);
  const stopAll = async (code: number) => {
    await azurite.stop();
    process.exit(code);
  };
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));

  if (coreToolsAvailable()) {
    console.log('Azure Functions Core Tools found: running `func start`.');
    for (const line of explorerBanner(port)) console.log(line);
    const func = spawn('func', ['start', '--port', String(port)], { cwd: root, env, stdio: 'inherit' });
    func.on('exit', (code) => void stopAll(code ?? 0));
    return;
  }

  console.log(
    'Azure Functions Core Tools not installed: serving the registered functions with the local node:http host.',
  );
  await serveLocal(port, console.log).catch((error: unknown) => {
    console.error(`Cannot listen on port ${port}: ${error instanceof Error ? error.message : String(error)}`);
    void stopAll(1);
  });
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}

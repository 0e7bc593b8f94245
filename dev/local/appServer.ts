import type { Server } from 'node:http';
import { getServices } from '../../shared/useCases/services';
import { routes } from '../../shared/api/route';
import { createLocalServer } from '../../shared/hosts/nodeHttp/server';
import { exitWithParent } from './parent';

/**
 * The app as its own OS process: the registered functions (already loaded by the caller) served by the
 * local host on 127.0.0.1:<port>, with the settings of the environment. Used by `dev/local/serve.ts` and by
 * the bundle `dev/local/appProcess.ts` spawns, so tests and the soak can kill -9 the app and start it again.
 */
export const READY_LINE = 'app-process ready';

export async function serveOnPort(port: number): Promise<Server> {
  // Creating the tables first keeps the first requests short; a failure here is not fatal, since every
  // request makes sure of the tables again.
  await getServices()
    .ready()
    .catch(() => undefined);
  const server = createLocalServer(routes, { log: 'error' });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  process.stdout.write(`${READY_LINE} ${port}\n`);
  process.once('SIGTERM', () => server.close(() => process.exit(0)));
  exitWithParent(Number(process.env.APP_PARENT_PID));
  return server;
}

/** PORT from `--port N` or the environment. */
export function portFromArguments(
  argv: string[] = process.argv.slice(2),
  env: NodeJS.ProcessEnv = process.env,
): number {
  const index = argv.indexOf('--port');
  const port = Number(index >= 0 ? argv[index + 1] : env.PORT);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error('give the port as --port N or PORT');
  return port;
}

export function failStartup(error: unknown): never {
  console.error('app process failed to start:', error);
  process.exit(1);
}

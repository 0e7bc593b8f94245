import { type ChildProcess, spawn } from 'node:child_process';
import { connect, createServer } from 'node:net';

/** Azurite's well-known development account (public, documented, accepted by Azurite only). */
const DEV_ACCOUNT = 'devstoreaccount1';
const DEV_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const HOST = '127.0.0.1';

export interface RunningAzurite {
  /** Connection string for the services started (table always; blob and queue with `all`). */
  connectionString: string;
  tablePort: number;
  stop: () => Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`Azurite exited with code ${child.exitCode} before listening`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, HOST);
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Azurite did not listen on ${HOST}:${port} within ${timeoutMs} ms`);
}

/**
 * Starts the real emulator in memory, on loopback, on free ports, without telemetry and without its
 * per-request log (which slows it down markedly).
 */
export async function startAzurite(
  options: { services: 'table' | 'all'; env?: NodeJS.ProcessEnv } = { services: 'table' },
): Promise<RunningAzurite> {
  const common = ['--inMemoryPersistence', '--disableTelemetry', '--silent', '--skipApiVersionCheck'];
  const tablePort = await freePort();
  let args: string[];
  let endpoints = `TableEndpoint=http://${HOST}:${tablePort}/${DEV_ACCOUNT};`;
  let entry: string;
  if (options.services === 'table') {
    entry = require.resolve('azurite/dist/src/table/main.js');
    args = ['--tableHost', HOST, '--tablePort', String(tablePort), ...common];
  } else {
    const [blobPort, queuePort] = [await freePort(), await freePort()];
    entry = require.resolve('azurite/dist/src/azurite.js');
    args = [
      '--blobHost',
      HOST,
      '--blobPort',
      String(blobPort),
      '--queueHost',
      HOST,
      '--queuePort',
      String(queuePort),
      '--tableHost',
      HOST,
      '--tablePort',
      String(tablePort),
      ...common,
    ];
    endpoints += `BlobEndpoint=http://${HOST}:${blobPort}/${DEV_ACCOUNT};QueueEndpoint=http://${HOST}:${queuePort}/${DEV_ACCOUNT};`;
  }
  // `env` adds to the environment Azurite inherits (the bench loads its CPU probe this way).
  const child = spawn(process.execPath, [entry, ...args], {
    stdio: ['ignore', 'ignore', 'inherit'],
    ...(options.env && { env: { ...process.env, ...options.env } }),
  });
  try {
    await waitForPort(tablePort, child);
  } catch (error) {
    child.kill();
    throw error;
  }
  return {
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${DEV_ACCOUNT};AccountKey=${DEV_KEY};${endpoints}`,
    tablePort,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill();
      }),
  };
}

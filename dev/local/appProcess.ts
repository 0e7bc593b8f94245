import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { READY_LINE } from './appServer';
import { freePort } from './azurite';

/**
 * Runs the app as a separate OS process on a fixed loopback port, so it can be killed with SIGKILL
 * (kill -9) in the middle of requests and started again on the same port, as a crashing Functions
 * worker would be. Compiled (dist/dev/local/appProcess.js) it runs dist/dev/local/serve.js; from the
 * TypeScript sources (vitest) it first bundles every function module with the local host into one
 * file with esbuild (about a second), since node cannot load .ts files.
 */
export interface AppProcessOptions {
  /** Settings of the app: DataTables__connectionString, TABLE_NAME_PREFIX, ... LOCAL_DEVELOPMENT_MODE is set. */
  env: Record<string, string>;
  /** A fixed port; a free one when left out. The port stays the same across restarts. */
  port?: number;
  /** How long a start may take before it counts as failed. */
  startTimeoutMs?: number;
}

export interface AppProcess {
  readonly port: number;
  readonly baseUrl: string;
  /** The current process id, undefined while down. */
  readonly pid: number | undefined;
  /** Starts the app (again) and resolves once it listens. */
  start: () => Promise<void>;
  /** kill -9, resolved once the process is gone. */
  kill: () => Promise<void>;
  /** Stops for good (SIGTERM, then SIGKILL) and removes the bundle. */
  stop: () => Promise<void>;
  /** The last lines the app wrote to stderr (errors it logged). */
  stderr: () => string[];
  readonly starts: number;
}

const MAX_STDERR_LINES = 200;

async function bundleFromSources(): Promise<{ file: string; directory: string }> {
  const root = join(__dirname, '..', '..');
  const { build } = await import('esbuild');
  const directory = mkdtempSync(join(tmpdir(), 'record-connections-app-'));
  const modules = readdirSync(join(root, 'functions'))
    .filter((file) => file.endsWith('.ts'))
    .sort();
  const entry = [
    ...modules.map((file) => `import './functions/${file.replace(/\.ts$/, '')}';`),
    `import { failStartup, portFromArguments, serveOnPort } from './dev/local/appServer';`,
    'serveOnPort(portFromArguments()).catch(failStartup);',
  ].join('\n');
  const file = join(directory, 'app.js');
  await build({
    stdin: { contents: entry, resolveDir: root, sourcefile: 'app-process.ts', loader: 'ts' },
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['@azure/functions-core'],
    outfile: file,
    logLevel: 'warning',
  });
  process.once('exit', () => rmSync(directory, { recursive: true, force: true }));
  return { file, directory };
}

/**
 * The file node runs: dist/dev/local/serve.js when compiled, else a bundle of the sources, one per app
 * (removed when the app stops: test workers may end without an exit event).
 */
async function entryPoint(): Promise<{ file: string; directory?: string }> {
  const compiled = join(__dirname, 'serve.js');
  if (__filename.endsWith('.js') && existsSync(compiled)) return { file: compiled };
  return bundleFromSources();
}

export async function startAppProcess(options: AppProcessOptions): Promise<AppProcess> {
  const port = options.port ?? (await freePort());
  const { file: entry, directory: bundleDirectory } = await entryPoint();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LOCAL_DEVELOPMENT_MODE: 'true',
    WEBSITE_AUTH_ENABLED: '',
    ...options.env,
    PORT: String(port),
    APP_PARENT_PID: String(process.pid),
  };
  const startTimeoutMs = options.startTimeoutMs ?? 20_000;
  const stderr: string[] = [];
  let child: ChildProcess | undefined;
  let starts = 0;

  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      stderr.push(line);
      if (stderr.length > MAX_STDERR_LINES) stderr.shift();
    }
  };

  const exited = (running: ChildProcess): Promise<void> =>
    running.exitCode !== null || running.signalCode !== null
      ? Promise.resolve()
      : new Promise((resolve) => running.once('exit', () => resolve()));

  async function startOnce(): Promise<void> {
    const started = spawn(process.execPath, [entry, '--port', String(port)], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = started;
    started.stderr?.on('data', keep);
    await new Promise<void>((resolve, reject) => {
      let output = '';
      const timer = setTimeout(() => {
        started.kill('SIGKILL');
        reject(new Error(`the app did not listen on port ${port} within ${startTimeoutMs} ms`));
      }, startTimeoutMs);
      started.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString('utf8');
        if (output.includes(READY_LINE)) {
          clearTimeout(timer);
          resolve();
        }
      });
      started.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the app exited (${signal ?? code}) before it listened: ${stderr.slice(-5).join(' | ')}`));
      });
    });
    starts++;
  }

  async function start(): Promise<void> {
    if (child && child.exitCode === null && child.signalCode === null) throw new Error('the app is already running');
    // A port just freed by a killed process is normally free at once; a few tries cover a slow kernel.
    for (let attempt = 1; ; attempt++) {
      try {
        await startOnce();
        return;
      } catch (error) {
        if (attempt >= 3) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
      }
    }
  }

  async function kill(): Promise<void> {
    const running = child;
    if (!running) return;
    running.kill('SIGKILL');
    await exited(running);
    child = undefined;
  }

  async function stop(): Promise<void> {
    const running = child;
    if (running && running.exitCode === null && running.signalCode === null) {
      running.kill('SIGTERM');
      const timer = setTimeout(() => running.kill('SIGKILL'), 2000);
      await exited(running);
      clearTimeout(timer);
    }
    child = undefined;
    if (bundleDirectory) rmSync(bundleDirectory, { recursive: true, force: true });
  }

  await start();
  return {
    port,
    baseUrl: `http://127.0.0.1:${port}/api`,
    get pid() {
      return child?.pid;
    },
    start,
    kill,
    stop,
    stderr: () => [...stderr],
    get starts() {
      return starts;
    },
  };
}

export interface CrashLoopOptions {
  /** Pause between a start and the next kill, drawn between these bounds. */
  minMs: number;
  maxMs: number;
  random?: () => number;
}

export interface CrashStats {
  kills: number;
  /** Milliseconds from each kill until the app listened again. */
  downtimes: number[];
}

export interface CrashLoop {
  /** Ends the loop and resolves once the app is up again. */
  stop: () => Promise<CrashStats>;
}

/** kill -9 the app every minMs-maxMs and restart it at once on the same port, until stopped. */
export function startCrashLoop(app: AppProcess, options: CrashLoopOptions): CrashLoop {
  const random = options.random ?? Math.random;
  const stats: CrashStats = { kills: 0, downtimes: [] };
  let stopped = false;
  let wake: (() => void) | undefined;
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  let failed = false;
  let failure: unknown;
  const loop = (async () => {
    while (!stopped) {
      await pause(options.minMs + random() * (options.maxMs - options.minMs));
      if (stopped) break;
      const killedAt = performance.now();
      await app.kill();
      stats.kills++;
      await app.start();
      stats.downtimes.push(performance.now() - killedAt);
    }
  })().catch((error: unknown) => {
    failed = true;
    failure = error; // reported by stop(); the app stays down meanwhile and clients see refused connections
  });
  return {
    stop: async () => {
      stopped = true;
      wake?.();
      await loop;
      if (failed) throw failure;
      return stats;
    },
  };
}

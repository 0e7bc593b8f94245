// Dev, simulation: the CLI: runs a range of seeds over worker threads, or replays one seed with its trace.
import { availableParallelism } from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { replayCommand, runSchedule } from './runner';
import type { SimulationOptions } from './workload';

/**
 * `npm run simulate -- [--schedules N] [--from SEED] [--workers W] [--seed S] [--trace]`
 *
 * Runs N deterministic simulation schedules (seeds FROM .. FROM+N-1) over W worker threads and checks
 * every invariant after each. A failing seed is printed with the command that replays it alone
 * (`--seed S --trace` prints its every storage step). Exit code 1 when any schedule failed.
 */
interface Args {
  schedules: number;
  from: number;
  workers: number;
  seed?: number;
  trace: boolean;
}

function parseArgs(argv: string[]): Args {
  const value = (name: string): string | undefined => {
    const index = argv.indexOf(`--${name}`);
    return index >= 0 ? argv[index + 1] : undefined;
  };
  const number = (name: string, fallback: number): number => {
    const text = value(name);
    const parsed = text === undefined ? fallback : Number(text);
    if (!Number.isSafeInteger(parsed) || parsed < 0) throw new Error(`--${name} takes a whole number`);
    return parsed;
  };
  const seed = value('seed');
  return {
    schedules: number('schedules', 10_000),
    from: number('from', 1),
    workers: Math.max(1, number('workers', availableParallelism())),
    ...(seed !== undefined && { seed: number('seed', 0) }),
    trace: argv.includes('--trace'),
  };
}

interface Summary {
  schedules: number;
  steps: number;
  failures: { seed: number; violations: string[] }[];
}

const PROGRESS_EVERY = 25_000;

async function runRange(
  from: number,
  count: number,
  options: SimulationOptions,
  onProgress?: (done: number) => void,
): Promise<Summary> {
  const summary: Summary = { schedules: 0, steps: 0, failures: [] };
  for (let seed = from; seed < from + count; seed++) {
    const result = await runSchedule(seed, options);
    summary.schedules++;
    if (summary.schedules % PROGRESS_EVERY === 0) onProgress?.(PROGRESS_EVERY);
    summary.steps += result.steps;
    if (result.violations.length > 0) summary.failures.push({ seed, violations: result.violations.slice(0, 5) });
  }
  return summary;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (args.seed !== undefined) {
    const result = await runSchedule(args.seed);
    if (args.trace) for (const line of result.trace) console.log(line);
    console.log(JSON.stringify(result.plan, (_key, value: unknown) => value, 1).replace(/\n\s*/g, ' '));
    console.log(
      result.violations.length === 0
        ? `seed ${args.seed}: ok (${result.steps} steps)`
        : `seed ${args.seed}: ${result.violations.length} violation(s)\n  ${result.violations.join('\n  ')}`,
    );
    return result.violations.length === 0 ? 0 : 1;
  }
  const started = performance.now();
  let done = 0;
  const workers = Math.min(args.workers, args.schedules || 1);
  const share = Math.ceil(args.schedules / workers);
  const summaries = await Promise.all(
    Array.from({ length: workers }, (_, index) => {
      const from = args.from + index * share;
      const count = Math.max(0, Math.min(share, args.from + args.schedules - from));
      return new Promise<Summary>((resolve, reject) => {
        const worker = new Worker(__filename, { workerData: { from, count } });
        worker.on('message', (message: { progress: number } | Summary) => {
          if ('schedules' in message) resolve(message);
          else {
            done += message.progress;
            console.log(`  ${done} schedules, ${((performance.now() - started) / 1000).toFixed(0)} s`);
          }
        });
        worker.on('error', reject);
        worker.on('exit', (code) => {
          if (code !== 0) reject(new Error(`worker ${index} exited with ${code}`));
        });
      });
    }),
  );
  const total = summaries.reduce(
    (all, summary) => ({
      schedules: all.schedules + summary.schedules,
      steps: all.steps + summary.steps,
      failures: [...all.failures, ...summary.failures],
    }),
    { schedules: 0, steps: 0, failures: [] } as Summary,
  );
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `simulate: ${total.schedules} schedules (seeds ${args.from}..${args.from + args.schedules - 1}), ${total.steps} storage steps, ${seconds.toFixed(1)} s on ${workers} worker(s)`,
  );
  for (const failure of total.failures.slice(0, 20)) {
    console.log(`FAILED seed ${failure.seed}: ${failure.violations[0]}\n  replay: ${replayCommand(failure.seed)}`);
  }
  console.log(
    total.failures.length === 0
      ? 'no invariant violated'
      : `${total.failures.length} schedule(s) violated an invariant`,
  );
  return total.failures.length === 0 ? 0 : 1;
}

if (isMainThread) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error);
      process.exit(2);
    },
  );
} else {
  const { from, count } = workerData as { from: number; count: number };
  void runRange(from, count, {}, (progress) => parentPort?.postMessage({ progress })).then((summary) =>
    parentPort?.postMessage(summary),
  );
}

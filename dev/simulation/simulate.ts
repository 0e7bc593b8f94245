// Dev, simulation: the CLI: runs a range of seeds over worker threads, or replays one seed with its trace.
import { availableParallelism } from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { replayCommand, runSchedule } from './runner';
import type { SimulationOptions } from './workload';

/**
 * `npm run simulate -- [--schedules N] [--from SEED] [--workers W] [--until-failure] [--seed S] [--trace]`
 *
 * Runs N deterministic simulation schedules (seeds FROM .. FROM+N-1) over W worker threads and checks
 * every invariant after each. A failing seed is printed with the command that replays it alone
 * (`--seed S --trace` prints its every storage step). Exit code 1 when any schedule failed.
 *
 * `--until-failure` stops the campaign at its first (lowest) failing seed, every seed below it having
 * passed, so the seed says how many schedules it took to find the failure (the kill suite's measure,
 * dev/mutants/run.ts). The workers then take the seeds in turn (worker i: FROM+i, FROM+i+W, ...) instead of
 * in blocks, so they all move up together and stop once past the lowest failing seed any of them found.
 */
interface Args {
  schedules: number;
  from: number;
  workers: number;
  seed?: number;
  trace: boolean;
  untilFailure: boolean;
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
    untilFailure: argv.includes('--until-failure'),
  };
}

interface Summary {
  schedules: number;
  steps: number;
  failures: { seed: number; violations: string[] }[];
}

const PROGRESS_EVERY = 25_000;

/** A worker's seeds: `count` of them from `from`, `stride` apart (1: a block; the worker count: taken in turn). */
interface SeedRange {
  from: number;
  count: number;
  stride: number;
  /**
   * --until-failure: the lowest failing seed found so far by any worker (NO_FAILURE_YET until then), shared
   * by all of them; a worker stops before a seed above it.
   */
  firstFailure?: Int32Array;
}

const NO_FAILURE_YET = 0x7fffffff;

/** Lowers the shared first failing seed to `seed`, unless a worker found a lower one already. */
function reportFailure(firstFailure: Int32Array, seed: number): void {
  for (;;) {
    const current = Atomics.load(firstFailure, 0);
    if (current <= seed || Atomics.compareExchange(firstFailure, 0, current, seed) === current) return;
  }
}

async function runRange(
  range: SeedRange,
  options: SimulationOptions,
  onProgress?: (done: number) => void,
): Promise<Summary> {
  const { from, count, stride, firstFailure } = range;
  const summary: Summary = { schedules: 0, steps: 0, failures: [] };
  for (let index = 0; index < count; index++) {
    const seed = from + index * stride;
    if (firstFailure && seed > Atomics.load(firstFailure, 0)) break;
    const result = await runSchedule(seed, options);
    summary.schedules++;
    if (summary.schedules % PROGRESS_EVERY === 0) onProgress?.(PROGRESS_EVERY);
    summary.steps += result.steps;
    if (result.violations.length > 0) {
      summary.failures.push({ seed, violations: result.violations.slice(0, 5) });
      if (firstFailure) reportFailure(firstFailure, seed);
    }
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
  if (args.untilFailure && args.from + args.schedules > NO_FAILURE_YET)
    throw new Error(`--until-failure takes seeds below ${NO_FAILURE_YET}`);
  const firstFailure = args.untilFailure ? new Int32Array(new SharedArrayBuffer(4)).fill(NO_FAILURE_YET) : undefined;
  const summaries = await Promise.all(
    Array.from({ length: workers }, (_, index) => {
      const range: SeedRange = firstFailure
        ? {
            from: args.from + index,
            count: Math.max(0, Math.ceil((args.schedules - index) / workers)),
            stride: workers,
            firstFailure,
          }
        : {
            from: args.from + index * share,
            count: Math.max(0, Math.min(share, args.from + args.schedules - (args.from + index * share))),
            stride: 1,
          };
      return new Promise<Summary>((resolve, reject) => {
        const worker = new Worker(__filename, { workerData: range });
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
  if (firstFailure) {
    // Only the lowest failing seed counts: the others were found by workers that had not yet seen it.
    total.failures.sort((a, b) => a.seed - b.seed).splice(1);
  }
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
  if (firstFailure && total.failures[0])
    console.log(`stopped at the first failing seed, ${total.failures[0].seed}: every seed below it passed`);
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
  void runRange(workerData as SeedRange, {}, (progress) => parentPort?.postMessage({ progress })).then((summary) =>
    parentPort?.postMessage(summary),
  );
}

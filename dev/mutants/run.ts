// Dev, mutants: the CLI of the kill suite: each mutant planted in a copy of the tree, the simulation run until its first failing seed (and its tests), a table of what caught what.
import { type ChildProcess, spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { occurrences, plantInTree, RottenMutantError } from './apply';
import { type Mutant, MUTANTS, ruleLabel } from './mutants';

/**
 * `npm run mutants -- [--only name[,name]] [--schedules N] [--from S] [--workers W] [--tests] [--json FILE]`
 *
 * For each mutant (mutants.ts), one after the other: the tree is copied to a temporary folder (without
 * node_modules, dist and .git; node_modules is linked), the mutant planted, the copy built, and the
 * simulation campaign run there (`simulate --until-failure`, seeds S .. S+N-1 over W worker threads)
 * until its first failing seed. With --tests, a mutant the simulation did not catch is then run against
 * the test files it lists. A table of what caught each mutant follows; exit code 1 if any survived, 2 if
 * any could not be judged (it did not build, the simulator crashed or timed out) or a mutant's snippet
 * is not in the tree.
 *
 * One mutant at a time, the campaign on every core: the machine has few cores, and a campaign keeps
 * them all busy (the build and the tests do most of theirs too), so running mutants side by side would
 * only interleave them.
 */
interface Args {
  only?: string[];
  schedules: number;
  from: number;
  workers: number;
  tests: boolean;
  json?: string;
}

/** The default campaign is `npm test`'s: seeds 1-10,000. */
const DEFAULT_SCHEDULES = 10_000;

function parseArgs(argv: string[]): Args {
  const value = (name: string): string | undefined => {
    const index = argv.indexOf(`--${name}`);
    if (index < 0) return undefined;
    const text = argv[index + 1];
    if (text === undefined || text.startsWith('--')) throw new Error(`--${name} needs a value`);
    return text;
  };
  const number = (name: string, fallback: number): number => {
    const text = value(name);
    const parsed = text === undefined ? fallback : Number(text);
    if (!Number.isSafeInteger(parsed) || parsed < 0) throw new Error(`--${name} takes a whole number`);
    return parsed;
  };
  const only = value('only');
  const json = value('json');
  return {
    ...(only !== undefined && { only: only.split(',').map((name) => name.trim()) }),
    schedules: number('schedules', DEFAULT_SCHEDULES),
    from: number('from', 1),
    workers: Math.max(1, number('workers', availableParallelism())),
    tests: argv.includes('--tests'),
    ...(json !== undefined && { json }),
  };
}

/** What judged a mutant. */
type Verdict =
  | { kind: 'simulation'; seed: number; violation: string }
  | { kind: 'tests'; files: string[]; failed: string[] }
  | { kind: 'survived'; schedules: number; testsRun: string[] }
  | { kind: 'unjudged'; reason: string };

interface Row {
  mutant: Mutant;
  verdict: Verdict;
  seconds: number;
}

/** The repository root: this file runs as dist/dev/mutants/run.js. */
const ROOT = resolve(__dirname, '..', '..', '..');
/** Not copied: dependencies (linked instead), the build (each copy builds its own) and git's files. */
const NOT_COPIED = new Set(['node_modules', 'dist', '.git']);

/** The child process running now and the copy in use, so an interrupted run leaves neither behind. */
let running: ChildProcess | undefined;
let copyInUse: string | undefined;

interface Finished {
  code: number | null;
  output: string[];
  timedOut: boolean;
}

/** Runs a command in `cwd`, handing each output line to `onLine`; kills it after `timeoutMs`. */
function runCommand(
  command: string,
  args: string[],
  cwd: string,
  timeoutMs: number,
  onLine: (line: string) => void = () => undefined,
): Promise<Finished> {
  return new Promise((resolvePromise, reject) => {
    // Its own process group, so stopping it stops what it started too (vitest's forks and its Azurite).
    const child = spawn(command, args, {
      cwd,
      detached: true,
      env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
    });
    running = child;
    const output: string[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      stopGroup(child);
    }, timeoutMs);
    let pending = '';
    const take = (chunk: Buffer) => {
      const text = pending + chunk.toString('utf8');
      const parts = text.split('\n');
      pending = parts.pop() ?? '';
      for (const line of parts) {
        output.push(line);
        onLine(line);
      }
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', (error) => {
      clearTimeout(timer);
      running = undefined;
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      running = undefined;
      if (pending) output.push(pending);
      resolvePromise({ code, output, timedOut });
    });
  });
}

/** Stops a child started by runCommand and everything in its process group. */
function stopGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

/** A copy of the tree to plant a mutant in, sharing this tree's node_modules. */
function copyTree(name: string): string {
  const copy = mkdtempSync(join(tmpdir(), `mutant-${name}-`));
  copyInUse = copy;
  cpSync(ROOT, copy, {
    recursive: true,
    filter: (source) => !NOT_COPIED.has(relative(ROOT, source)),
  });
  symlinkSync(realpathSync(join(ROOT, 'node_modules')), join(copy, 'node_modules'), 'dir');
  return copy;
}

function removeCopy(): void {
  if (copyInUse !== undefined) rmSync(copyInUse, { recursive: true, force: true });
  copyInUse = undefined;
}

const elapsed = (started: number): number => (performance.now() - started) / 1000;

/** A campaign's budget: generous (about 250 schedules a second on two cores), but a hung mutant ends. */
const campaignTimeoutMs = (schedules: number): number => 120_000 + schedules * 50;
const BUILD_TIMEOUT_MS = 300_000;
const TESTS_TIMEOUT_MS = 900_000;

const FAILED_SEED = /^FAILED seed (\d+): (.*)$/;

/** The simulation campaign in the copy, until its first failing seed. */
async function simulate(copy: string, args: Args, log: (text: string) => void): Promise<Verdict | undefined> {
  const simulation = await runCommand(
    process.execPath,
    [
      'dist/dev/simulation/simulate.js',
      '--schedules',
      String(args.schedules),
      '--from',
      String(args.from),
      '--workers',
      String(args.workers),
      '--until-failure',
    ],
    copy,
    campaignTimeoutMs(args.schedules),
    (line) => {
      if (/^\s+\d+ schedules, \d+ s$/.test(line)) log(`  simulation:${line}`);
    },
  );
  if (simulation.timedOut) return { kind: 'unjudged', reason: 'the simulation timed out' };
  for (const line of simulation.output) {
    const failed = FAILED_SEED.exec(line);
    if (failed) return { kind: 'simulation', seed: Number(failed[1]), violation: failed[2] ?? '' };
  }
  if (simulation.code === 0) return undefined;
  return {
    kind: 'unjudged',
    reason: `the simulator exited with ${simulation.code}: ${simulation.output.slice(-3).join(' / ')}`,
  };
}

/** The vitest JSON report's few fields read here. */
interface VitestReport {
  testResults: { name: string; status: string }[];
}

function isVitestReport(value: unknown): value is VitestReport {
  if (typeof value !== 'object' || value === null || !('testResults' in value)) return false;
  const { testResults } = value;
  return (
    Array.isArray(testResults) &&
    testResults.every(
      (result: unknown) =>
        typeof result === 'object' &&
        result !== null &&
        'name' in result &&
        typeof result.name === 'string' &&
        'status' in result &&
        typeof result.status === 'string',
    )
  );
}

/** The mutant's test files in the copy (one vitest run, one Azurite): the files that failed. */
async function runTests(copy: string, files: string[], log: (text: string) => void): Promise<Verdict | undefined> {
  const reportFile = join(copy, 'mutant-tests.json');
  const tests = await runCommand(
    process.execPath,
    [
      join(copy, 'node_modules', 'vitest', 'vitest.mjs'),
      'run',
      ...files,
      '--reporter=json',
      `--outputFile=${reportFile}`,
    ],
    copy,
    TESTS_TIMEOUT_MS,
  );
  if (tests.timedOut) return { kind: 'unjudged', reason: `the tests timed out (${files.join(', ')})` };
  const report: unknown = existsSync(reportFile) ? JSON.parse(readFileSync(reportFile, 'utf8')) : undefined;
  if (!isVitestReport(report))
    return {
      kind: 'unjudged',
      reason: `vitest exited with ${tests.code} and no report: ${tests.output.slice(-3).join(' / ')}`,
    };
  const failed = report.testResults
    .filter((result) => result.status !== 'passed')
    .map((result) => relative(copy, result.name));
  log(`  tests: ${failed.length === 0 ? 'all passed' : `failed: ${failed.join(', ')}`}`);
  if (failed.length > 0) return { kind: 'tests', files, failed };
  if (tests.code !== 0) return { kind: 'unjudged', reason: `vitest exited with ${tests.code}, yet every file passed` };
  return undefined;
}

/** One mutant: copy, plant, build, simulate, and (--tests) its tests when the simulation did not catch it. */
async function judge(mutant: Mutant, args: Args, log: (text: string) => void): Promise<Verdict> {
  const copy = copyTree(mutant.name);
  try {
    plantInTree(copy, mutant);
    const build = await runCommand(
      process.execPath,
      [join(copy, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'],
      copy,
      BUILD_TIMEOUT_MS,
    );
    if (build.code !== 0)
      return { kind: 'unjudged', reason: `it does not build: ${build.output.filter(Boolean).slice(0, 2).join(' / ')}` };
    const bySimulation = args.schedules > 0 ? await simulate(copy, args, log) : undefined;
    if (bySimulation) return bySimulation;
    const files = args.tests ? (mutant.tests ?? []) : [];
    const byTests = files.length > 0 ? await runTests(copy, files, log) : undefined;
    return byTests ?? { kind: 'survived', schedules: args.schedules, testsRun: files };
  } finally {
    removeCopy();
  }
}

function caughtBy(verdict: Verdict): string {
  switch (verdict.kind) {
    case 'simulation':
      return `simulation, seed ${verdict.seed}`;
    case 'tests':
      return verdict.failed.join(', ');
    case 'survived':
      return `SURVIVED ${verdict.schedules.toLocaleString('en-US')} schedules${verdict.testsRun.length > 0 ? ` and ${verdict.testsRun.length} test file(s)` : ''}`;
    case 'unjudged':
      return `NOT JUDGED: ${verdict.reason}`;
  }
}

function table(rows: Row[]): string {
  const lines = [
    '| mutant | rule | caught by | seconds |',
    '|---|---|---|---|',
    ...rows.map(
      ({ mutant, verdict, seconds }) =>
        `| ${mutant.name} | ${ruleLabel(mutant.rule)} | ${caughtBy(verdict)} | ${seconds.toFixed(0)} |`,
    ),
  ];
  return lines.join('\n');
}

function selected(args: Args): Mutant[] {
  if (!args.only) return MUTANTS;
  const unknown = args.only.filter((name) => !MUTANTS.some((mutant) => mutant.name === name));
  if (unknown.length > 0) throw new Error(`no such mutant: ${unknown.join(', ')}`);
  return MUTANTS.filter((mutant) => args.only?.includes(mutant.name));
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const mutants = selected(args);
  // Every snippet is checked before anything runs: a rotten mutant stops the suite at once.
  for (const mutant of mutants) {
    const found = occurrences(readFileSync(join(ROOT, mutant.file), 'utf8'), mutant.find);
    if (found !== 1) throw new RottenMutantError(mutant, found);
  }
  console.log(
    `mutants: ${mutants.length} mutant(s), seeds ${args.from}..${args.from + args.schedules - 1} each on ${args.workers} worker(s)` +
      (args.tests ? ', then their tests if the simulation did not catch them' : ''),
  );
  const started = performance.now();
  const rows: Row[] = [];
  for (const [index, mutant] of mutants.entries()) {
    const log = (text: string) => console.log(text);
    log(`[${index + 1}/${mutants.length}] ${mutant.name} (${ruleLabel(mutant.rule)}), in ${mutant.file}`);
    const began = performance.now();
    const verdict = await judge(mutant, args, log);
    const row: Row = { mutant, verdict, seconds: elapsed(began) };
    rows.push(row);
    log(
      `  ${caughtBy(verdict)}${verdict.kind === 'simulation' ? `: ${verdict.violation.slice(0, 160)}` : ''} (${row.seconds.toFixed(0)} s)`,
    );
  }
  console.log(`\n${table(rows)}\n`);
  const count = (kind: Verdict['kind']) => rows.filter((row) => row.verdict.kind === kind).length;
  console.log(
    `${count('simulation')} caught by the simulation, ${count('tests')} by tests, ${count('survived')} survived, ` +
      `${count('unjudged')} not judged; ${elapsed(started).toFixed(0)} s`,
  );
  if (args.json !== undefined) {
    writeFileSync(
      args.json,
      JSON.stringify(
        rows.map(({ mutant, verdict, seconds }) => ({
          name: mutant.name,
          rule: ruleLabel(mutant.rule),
          file: mutant.file,
          verdict,
          seconds,
        })),
        null,
        2,
      ),
    );
  }
  if (count('unjudged') > 0) return 2;
  return count('survived') > 0 ? 1 : 0;
}

/** Interrupted: the running child is stopped and the copy removed before exiting. */
function stopOn(signal: NodeJS.Signals): void {
  process.on(signal, () => {
    if (running) stopGroup(running);
    removeCopy();
    process.exit(130);
  });
}
stopOn('SIGINT');
stopOn('SIGTERM');

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    removeCopy();
    console.error(error instanceof Error ? error.message : error);
    process.exit(2);
  },
);

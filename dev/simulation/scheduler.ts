// Dev, simulation: the deterministic scheduler: every storage call a step it orders by seed and may hit with a fault.
import { AsyncLocalStorage } from 'node:async_hooks';
import {
  type Page,
  type Stored,
  StorageError,
  type TablePort,
  type TableQuery,
  type WriteOp,
} from '../../shared/storage/tablePort';
import { Prng } from './prng';
import type { SimTable, SimTableService } from './simTable';

/**
 * A deterministic scheduler for simulation tests, in the manner of FoundationDB's and TigerBeetle's: the
 * real protocol code runs as concurrent tasks over the simulated table service, and every storage call is
 * a step that waits, pending, until the scheduler picks it. Steps are picked one at a time by a seeded
 * PRNG, once every task has run as far as it can (so the interleaving depends on the seed alone), and
 * each may be hit by a fault. Same seed, same tasks: same schedule, same trace, same outcome.
 *
 * The tasks must await nothing but scheduled tables and `sleep`: anything else (a real timer, I/O) is
 * outside the simulation, and the run fails saying so rather than going nondeterministic.
 */

/** Probabilities (0 to 1, summing to at most 1) of what happens to one storage step. */
export interface Faults {
  /** Not applied; the caller gets StorageError 503 (throttled). */
  fail?: number;
  /** Applied; the answer is lost: the caller gets StorageError with no status, as on a timeout. */
  lost?: number;
  /**
   * Applied; the answer is lost and the SDK retries: the same request is applied again, as a later step
   * of its own (other steps may come between), and the caller gets the second attempt's answer: 409 for
   * an insert, 412 for a conditional replace, 404 for a delete...
   */
  duplicate?: number;
  /** The task dies before the step reaches storage: not applied, and the task never runs again. */
  crashBefore?: number;
  /** The task dies once the step is applied, before it hears the answer. */
  crashAfter?: number;
}

export type Fault = 'fail' | 'lost' | 'duplicate' | 'crash-before' | 'crash-after';

export type Outcome<T = unknown> = { kind: 'ok'; value: T } | { kind: 'error'; error: unknown } | { kind: 'crashed' };

export interface SchedulerOptions {
  seed: number;
  faults?: Faults;
  /** The simulated clock's first instant; a fixed one by default, so runs do not depend on the date. */
  start?: Date;
  /** A run taking more steps than this fails (a livelock, or a task that never stops). 100,000 by default. */
  maxSteps?: number;
  /** Keep the trace (one line per step). On by default; off saves building the lines. */
  trace?: boolean;
}

const DEFAULT_START = Date.UTC(2030, 0, 1);
const FAULTS: ReadonlyArray<[keyof Faults, Fault]> = [
  ['fail', 'fail'],
  ['lost', 'lost'],
  ['duplicate', 'duplicate'],
  ['crashBefore', 'crash-before'],
  ['crashAfter', 'crash-after'],
];

interface Task {
  scheduler: Scheduler;
  name: string;
  outcome: Outcome | undefined;
  crashed: boolean;
}

/**
 * Which task is running, for every scheduler. One instance for the process: each AsyncLocalStorage ever
 * enabled stays on a list that Node walks on every promise created (Node 20), so one per scheduler made
 * a campaign slower with every schedule (75% of the time in async_hooks' _propagate after a few thousand).
 */
const current = new AsyncLocalStorage<Task>();

type Result = { ok: true; value: unknown } | { ok: false; error: unknown };

interface Step {
  task: Task;
  /** "links.insert p/r", for the trace. */
  label: string;
  /** Applies the call to the simulated state, at the moment the step is picked. */
  apply: () => unknown;
  /** What the caller hears. */
  settle: (result: Result) => void;
  /** The SDK's second attempt after a `duplicate`. */
  retry: boolean;
}

interface Sleeper {
  task: Task;
  ms: number;
  wake: number;
  order: number;
  resolve: () => void;
}

export class Scheduler {
  private readonly prng: Prng;
  /** The tasks' own randomness, apart from the scheduler's, so a task drawing more numbers does not reshuffle the schedule. */
  private readonly taskPrng: Prng;
  private readonly faults: Array<[Fault, number]>;
  private readonly faultTotal: number;
  private readonly maxSteps: number;
  private readonly tracing: boolean;
  private readonly start: number;
  private clock: number;
  private readonly pending: Step[] = [];
  private readonly sleepers: Sleeper[] = [];
  private sleeps = 0;
  private stepCount = 0;
  private runStartedAt = 0;
  private live = 0;
  private tasks: Task[] = [];
  private active: { resolve: () => void; reject: (error: Error) => void } | undefined;
  private readonly lines: string[] = [];

  constructor(options: SchedulerOptions) {
    this.prng = new Prng(options.seed);
    this.taskPrng = new Prng(options.seed ^ 0x5eed5eed);
    this.faults = [];
    let total = 0;
    for (const [key, fault] of FAULTS) {
      const p = options.faults?.[key] ?? 0;
      if (!(p >= 0 && p <= 1)) throw new Error(`Fault probability ${key} must be between 0 and 1, not ${p}.`);
      if (p > 0) this.faults.push([fault, p]);
      total += p;
    }
    if (total > 1 + 1e-9) throw new Error(`Fault probabilities add up to ${total}, more than 1.`);
    this.faultTotal = total;
    this.start = options.start?.getTime() ?? DEFAULT_START;
    this.clock = this.start;
    this.maxSteps = options.maxSteps ?? 100_000;
    this.tracing = options.trace ?? true;
  }

  random(): number {
    return this.taskPrng.random();
  }

  int(n: number): number {
    return this.taskPrng.int(n);
  }

  pick<T>(items: readonly T[]): T {
    return this.taskPrng.pick(items);
  }

  /** The simulated clock: a fixed start, 1 ms more per storage step, and forward to each sleeper's wake-up. */
  now(): Date {
    return new Date(this.clock);
  }

  /** One line per step: number, task, call, keys, fault, what the caller heard. */
  get trace(): readonly string[] {
    return this.lines;
  }

  /** Steps taken so far, over every run. */
  get steps(): number {
    return this.stepCount;
  }

  /**
   * A pending step like any other; sleepers wake in the order of their wake-up times, each when the
   * scheduler picks it, moving the clock forward to its time if it is behind.
   */
  sleep(ms: number): Promise<void> {
    const task = current.getStore();
    if (task?.scheduler !== this || !this.active)
      return Promise.reject(new Error('scheduler.sleep() called outside a running task'));
    if (task.crashed) return new Promise<void>(() => {});
    return new Promise<void>((resolve) => {
      // As setTimeout does, a negative or NaN delay is no delay.
      const sleeper: Sleeper = { task, ms, wake: this.clock + (ms > 0 ? ms : 0), order: this.sleeps++, resolve };
      // Kept sorted by (wake, order): only the first is ever eligible.
      let index = this.sleepers.length;
      while (index > 0 && (this.sleepers[index - 1] as Sleeper).wake > sleeper.wake) index--;
      this.sleepers.splice(index, 0, sleeper);
    });
  }

  /** Tables of the service whose every call is a step of this scheduler. */
  tables(service: SimTableService): (name: string) => TablePort {
    const tables = new Map<string, TablePort>();
    return (name) => {
      let table = tables.get(name);
      if (!table) {
        table = new ScheduledTable(this, service.table(name));
        tables.set(name, table);
      }
      return table;
    };
  }

  /**
   * Runs the tasks concurrently, one step at a time, until each has settled or crashed and no storage
   * call is left pending (a call nobody awaits still reaches storage). Outcomes are in the tasks' order.
   */
  async run<T>(tasks: ReadonlyArray<() => Promise<T>>): Promise<Outcome<T>[]> {
    if (this.active) throw new Error('This scheduler is already running.');
    // Active before any task starts: a task's first call is made synchronously, inside run().
    const done = new Promise<void>((resolve, reject) => {
      this.active = { resolve, reject };
    });
    this.runStartedAt = this.stepCount;
    this.tasks = tasks.map((body, index) => {
      const task: Task = { scheduler: this, name: `t${index}`, outcome: undefined, crashed: false };
      this.live++;
      current.run(task, () => {
        let promise: Promise<T>;
        try {
          promise = body();
        } catch (error) {
          // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the storage call's own failure, passed on as it was thrown
          promise = Promise.reject(error);
        }
        promise.then(
          (value) => this.finish(task, { kind: 'ok', value }),
          (error: unknown) => this.finish(task, { kind: 'error', error }),
        );
      });
      return task;
    });
    this.next();
    await done;
    return this.tasks.map((task) => (task.outcome ?? { kind: 'crashed' }) as Outcome<T>);
  }

  /** Registers a storage call as a pending step; it touches nothing until picked. */
  call<R>(label: string, apply: () => R): Promise<R> {
    const task = current.getStore();
    if (task?.scheduler !== this || !this.active)
      return Promise.reject(new Error(`${label} called outside a running task of the scheduler`));
    // A crashed task is gone: its calls never run and never answer.
    if (task.crashed) return new Promise<R>(() => {});
    return new Promise<R>((resolve, reject) => {
      this.pending.push({
        task,
        label,
        apply,
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the storage call's own failure, passed on as it was thrown
        settle: (result) => (result.ok ? resolve(result.value as R) : reject(result.error)),
        retry: false,
      });
    });
  }

  private finish(task: Task, outcome: Outcome): void {
    // A crashed task's body may still end (a Promise.race past the crashed call): it crashed all the same.
    if (task.crashed || task.outcome) return;
    task.outcome = outcome;
    this.live--;
  }

  private crash(task: Task): void {
    if (task.crashed) return;
    task.crashed = true;
    if (!task.outcome) this.live--;
    // Its sleeps end with it; its other calls in flight may still land (see execute).
    for (let i = this.sleepers.length - 1; i >= 0; i--)
      if ((this.sleepers[i] as Sleeper).task === task) this.sleepers.splice(i, 1);
  }

  /**
   * Waits until every task has run as far as it can, then takes the next step. A callback of
   * process.nextTick queued from a microtask runs only once the microtask queue is empty (Node runs the
   * whole queue, newly queued microtasks included, before it looks at the tick queue again), whatever
   * the depth of the tasks' await chains: a full drain without going back to the event loop. Never going
   * back to it is also what keeps real timers and I/O from firing during a run, so a task awaiting one is
   * always caught, never sometimes resumed.
   */
  private next(): void {
    queueMicrotask(() => process.nextTick(() => this.step()));
  }

  private step(): void {
    const active = this.active;
    if (!active) return;
    try {
      if (!this.takeStep()) {
        this.active = undefined;
        active.resolve();
        return;
      }
    } catch (error) {
      // The run is abandoned: its tasks' pending calls are dropped and never answer.
      this.active = undefined;
      this.live = 0;
      this.pending.length = 0;
      this.sleepers.length = 0;
      active.reject(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    this.next();
  }

  /** Takes one step; false when the run is over. */
  private takeStep(): boolean {
    const sleeper = this.sleepers[0];
    const choices = this.pending.length + (sleeper ? 1 : 0);
    if (this.live === 0 && this.pending.length === 0) return false;
    if (choices === 0) {
      const waiting = this.tasks.filter((task) => !task.outcome && !task.crashed).map((task) => task.name);
      throw new Error(
        `Nondeterminism: no step is pending, yet task(s) ${waiting.join(', ')} have not settled: they await something ` +
          'outside the simulation (a real timer, I/O, a promise no step settles) or each other. Every await in a task ' +
          `must end in a scheduled table call or scheduler.sleep(). Last steps:\n${this.lines.slice(-5).join('\n')}`,
      );
    }
    if (++this.stepCount - this.runStartedAt > this.maxSteps)
      throw new Error(`The run took more than ${this.maxSteps} steps: a livelock, or a task that never ends.`);
    const index = this.prng.int(choices);
    if (index === this.pending.length) {
      this.sleepers.shift();
      const s = sleeper as Sleeper;
      if (s.wake > this.clock) this.clock = s.wake;
      if (this.tracing)
        this.lines.push(`${this.stepCount} ${s.task.name} sleep ${s.ms}ms -> woke at +${this.clock - this.start}ms`);
      s.resolve();
      return true;
    }
    // Swap-remove: O(1), and as deterministic as every other order.
    const step = this.pending[index] as Step;
    const last = this.pending.pop() as Step;
    if (index < this.pending.length) this.pending[index] = last;
    this.clock++;
    this.execute(step);
    return true;
  }

  private execute(step: Step): void {
    const { task } = step;
    if (task.crashed) {
      // A call in flight when its task died: the request may still reach storage, or not.
      const lands = this.prng.random() < 0.5;
      const result = lands ? attempt(step.apply) : undefined;
      this.log(step, lands ? 'orphan landed' : 'orphan lost', result);
      return;
    }
    const fault = step.retry ? undefined : this.fault();
    switch (fault) {
      case undefined: {
        const result = attempt(step.apply);
        this.log(step, step.retry ? 'retry' : undefined, result);
        step.settle(result);
        return;
      }
      case 'fail': {
        const result: Result = {
          ok: false,
          error: new StorageError(503, 'The server is busy (simulated).', { code: 'ServerBusy' }),
        };
        this.log(step, 'fail', result);
        step.settle(result);
        return;
      }
      case 'lost': {
        this.log(step, 'lost', attempt(step.apply));
        step.settle({ ok: false, error: new StorageError(undefined, 'No answer from storage (simulated timeout).') });
        return;
      }
      case 'duplicate': {
        this.log(step, 'duplicate', attempt(step.apply));
        this.pending.push({ ...step, retry: true });
        return;
      }
      case 'crash-before':
        this.log(step, 'crash-before', undefined);
        this.crash(task);
        return;
      case 'crash-after':
        this.log(step, 'crash-after', attempt(step.apply));
        this.crash(task);
        return;
    }
  }

  private fault(): Fault | undefined {
    if (this.faultTotal === 0) return undefined;
    let r = this.prng.random();
    for (const [fault, p] of this.faults) {
      if (r < p) return fault;
      r -= p;
    }
    return undefined;
  }

  private log(step: Step, fault: string | undefined, result: Result | undefined): void {
    if (!this.tracing) return;
    this.lines.push(
      `${this.stepCount} ${step.task.name} ${step.label}${fault ? ` ${fault}` : ''} -> ${result ? describe(result) : 'not applied'}`,
    );
  }
}

function attempt(apply: () => unknown): Result {
  try {
    return { ok: true, value: apply() };
  } catch (error) {
    return { ok: false, error };
  }
}

/** What the storage answered, in a few characters. */
function describe(result: Result): string {
  if (!result.ok) {
    if (result.error instanceof StorageError) {
      const index = result.error.details.failedIndex;
      return `${result.error.status ?? 'no answer'}${index !== undefined ? `@${index}` : ''}`;
    }
    return `refused (${result.error instanceof Error ? result.error.message : String(result.error)})`;
  }
  const value = result.value;
  if (value === undefined) return 'none';
  if (typeof value === 'string') return 'ok';
  if (isPage(value)) return `${value.items.length} item(s)${value.continuation !== undefined ? ' +more' : ''}`;
  return 'found';
}

const isPage = (value: unknown): value is Page => typeof value === 'object' && value !== null && 'items' in value;

/** A simulated table whose calls are scheduler steps. Arguments are copied at the call, as the SDK serializes the request. */
class ScheduledTable implements TablePort {
  constructor(
    private readonly scheduler: Scheduler,
    private readonly table: SimTable,
  ) {}

  get(partitionKey: string, rowKey: string): Promise<Stored | undefined> {
    return this.scheduler.call(`${this.table.name}.get ${partitionKey}/${rowKey}`, () =>
      this.table.getNow(partitionKey, rowKey),
    );
  }

  write(op: WriteOp): Promise<string> {
    const copy = copyOp(op);
    return this.scheduler.call(`${this.table.name}.${op.op} ${keyLabel(copy)}`, () => this.table.writeNow(copy));
  }

  batch(ops: WriteOp[]): Promise<void> {
    const copies = ops.map(copyOp);
    const label = `${this.table.name}.batch ${copies.map((op) => `${op.op[0]}:${keyLabel(op)}`).join(',')}`;
    return this.scheduler.call(label, () => this.table.batchNow(copies));
  }

  query(query: TableQuery, page: { limit: number; continuation?: string }): Promise<Page> {
    const copy: TableQuery = {
      ...query,
      ...(query.where && { where: query.where.map((condition) => ({ ...condition })) }),
      ...(query.select && { select: [...query.select] }),
      ...(typeof query.partitionKey === 'object' && { partitionKey: { ...query.partitionKey } }),
      ...(query.rowKey && { rowKey: { ...query.rowKey } }),
    };
    const pageCopy = { ...page };
    const where =
      typeof query.partitionKey === 'string' ? query.partitionKey : JSON.stringify(query.partitionKey ?? '*');
    return this.scheduler.call(
      `${this.table.name}.query ${where}${page.continuation !== undefined ? ' (next)' : ''}`,
      () => this.table.queryNow(copy, pageCopy),
    );
  }
}

function copyOp(op: WriteOp): WriteOp {
  return op.op === 'delete' ? { ...op } : { ...op, entity: { ...op.entity } };
}

function keyLabel(op: WriteOp): string {
  return op.op === 'delete' ? `${op.partitionKey}/${op.rowKey}` : `${op.entity.partitionKey}/${op.entity.rowKey}`;
}

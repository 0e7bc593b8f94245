// Dev, simulation: what the scheduler costs per step, against the simulated tables alone.
import type { TablePort } from '../../shared/storage/tablePort';
import { increment } from './counter';
import { Scheduler } from './scheduler';
import { SimTableService } from './simTable';

/**
 * What a schedule costs: the same 100-call workloads run through the scheduler (trace on and off) and
 * straight on the simulated tables, so the difference is the scheduler's own overhead per step.
 * Run: npm run build --silent && node dist/dev/simulation/benchScheduler.js [schedules]
 */

const CALLS_PER_TASK = 25;
const TASKS = 4;

/** Reads and upserts over a few keys: 25 calls per task, 100 per schedule. */
async function worker(table: TablePort, id: number): Promise<void> {
  for (let i = 0; i < CALLS_PER_TASK; i++) {
    const rowKey = `r${(id + i) % 5}`;
    if (i % 2 === 0) await table.get('p', rowKey);
    else await table.write({ op: 'upsert', entity: { partitionKey: 'p', rowKey, n: i, by: id } });
  }
}

async function measure(name: string, schedules: number, once: (seed: number) => Promise<number>): Promise<void> {
  for (let seed = 0; seed < Math.min(200, schedules); seed++) await once(seed); // warm-up
  let steps = 0;
  const started = process.hrtime.bigint();
  for (let seed = 1; seed <= schedules; seed++) steps += await once(seed);
  const ns = Number(process.hrtime.bigint() - started);
  console.log(
    `${name.padEnd(44)} ${(ns / schedules / 1e6).toFixed(3)} ms/schedule  ${(ns / steps / 1e3).toFixed(2)} µs/step  (${(steps / schedules).toFixed(0)} steps/schedule)`,
  );
}

async function main(): Promise<void> {
  const schedules = Number(process.argv[2] ?? 2000);
  await measure('direct on SimTable, no scheduler', schedules, async () => {
    const service = new SimTableService();
    const table = service.table('t');
    await Promise.all(Array.from({ length: TASKS }, (_, id) => worker(table, id)));
    return TASKS * CALLS_PER_TASK;
  });
  for (const trace of [true, false]) {
    await measure(`scheduler, 100 calls, trace ${trace ? 'on' : 'off'}`, schedules, async (seed) => {
      const scheduler = new Scheduler({ seed, trace });
      const table = scheduler.tables(new SimTableService())('t');
      await scheduler.run(Array.from({ length: TASKS }, (_, id) => () => worker(table, id)));
      return scheduler.steps;
    });
  }
  await measure('scheduler, 8 increments with faults, trace on', schedules, async (seed) => {
    const scheduler = new Scheduler({
      seed,
      faults: { fail: 0.02, lost: 0.02, duplicate: 0.02, crashBefore: 0.01, crashAfter: 0.01 },
    });
    const table = scheduler.tables(new SimTableService())('t');
    await scheduler.run(Array.from({ length: 8 }, () => () => increment(table)));
    return scheduler.steps;
  });
}

void main();

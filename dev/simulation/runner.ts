// Dev, simulation: the runner: one schedule from its seed, wiring the scheduler, the simulated tables and the app's own domain through setup, run and repair.
import { buildObjectTypeRegistry } from '../../shared/domain/objectTypes';
import { createDomain } from '../../shared/useCases/services';
import { SimulationAuditor } from './checks';
import { Scheduler } from './scheduler';
import { SimTableService } from './simTable';
import {
  type Domain,
  GRACE_DURING_RUN_MS,
  planSchedule,
  runClient,
  runSetup,
  type SchedulePlan,
  type SimulationOptions,
  TABLES,
} from './workload';

/**
 * Deterministic simulation of the write protocol: the app's own domain and storage code (createDomain)
 * over the simulated table service, several clients at once (workload.ts), every storage call a step the
 * seeded scheduler orders and may fail, lose the answer of, repeat (the SDK's retry after a lost answer)
 * or crash the caller at. Then the tables are left alone, the repair job runs, and the auditor (checks.ts)
 * checks every invariant.
 *
 * One seed is one schedule: `runSchedule(seed)` is a pure function of the seed, so a failing seed replays.
 */

/** The command that replays one schedule alone, printing its every storage step. */
export const replayCommand = (seed: number): string => `npm run simulate -- --seed ${seed} --trace`;

export interface ScheduleResult {
  seed: number;
  violations: string[];
  steps: number;
  trace: string[];
  plan: SchedulePlan;
}

const NO_FAULTS = { fail: 0, lost: 0, duplicate: 0, crashBefore: 0, crashAfter: 0 };

export async function runSchedule(seed: number, options: SimulationOptions = {}): Promise<ScheduleResult> {
  const plan = planSchedule(seed, options);
  const service = new SimTableService();
  const types = buildObjectTypeRegistry('base');
  const auditor = new SimulationAuditor(service);

  // Setup, without faults: the roles, and a few connections in whatever state the setup operations leave.
  // Its own random stream: the run's must not repeat the setup's (request nonces are drawn from it).
  const quiet = new Scheduler({ seed: seed ^ 0x5e7a9, faults: NO_FAULTS });
  const quietDomain = domainOver(service, quiet, types, plan.claimGraceMs);
  await quiet.run([() => runSetup(quietDomain, plan)]).then((outcomes) => auditor.phaseDone(outcomes, 'setup'));

  // The run: every client at once, faults at every storage call.
  const scheduler = new Scheduler({
    seed,
    faults: plan.faults,
    start: new Date(quiet.now().getTime() + 2 * GRACE_DURING_RUN_MS),
  });
  const domain = domainOver(service, scheduler, types, plan.claimGraceMs);
  const outcomes = await scheduler.run(
    plan.clients.map((client, index) => () => runClient(domain, () => scheduler.steps, client, index, auditor)),
  );
  auditor.clientsDone(outcomes);

  // Quiescence: the repair job, without faults, with the grace period over, then the checker.
  const after = new Scheduler({ seed: seed + 1, faults: NO_FAULTS, start: new Date(scheduler.now().getTime() + 1) });
  const repairDomain = domainOver(service, after, types, plan.claimGraceMs);
  await after
    .run([
      async () => {
        // The job runs every 15 minutes: what one pass writes (tombstones), a later one purges.
        for (let pass = 0; ; pass++) {
          if (!auditor.repairPass(await repairDomain.consistency.walk({ repair: true, graceMs: 0 }), pass)) break;
        }
        auditor.checkerAfterRepair((await repairDomain.consistency.walk({ repair: false, graceMs: 0 })).violations);
      },
    ])
    .then((done) => auditor.phaseDone(done, 'repair'));

  auditor.afterRepair();
  return { seed, violations: auditor.violations, steps: scheduler.steps, trace: [...scheduler.trace], plan };
}

function domainOver(
  service: SimTableService,
  scheduler: Scheduler,
  types: ReturnType<typeof buildObjectTypeRegistry>,
  claimGraceMs: number,
): Domain {
  const table = scheduler.tables(service);
  return createDomain(
    { connections: table(TABLES.connections), roles: table(TABLES.roles), roleIndex: table(TABLES.roleIndex) },
    types,
    // The repair job's log of rows it could not check (storage failed) is expected noise here.
    {
      clock: () => scheduler.now(),
      protocol: { sleep: (ms) => scheduler.sleep(ms), random: () => scheduler.random(), claimGraceMs },
      log: process.env.SIM_LOG ? (message) => console.log(message) : () => undefined,
    },
  );
}

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { loadFunctions } from '../../shared/hosts/nodeHttp/loadFunctions';
import { startTimers } from '../../shared/hosts/nodeHttp/timers';
import { type TimerDefinition, timers } from '../../shared/hosts/triggers';
import { resetServices } from '../../shared/useCases/services';
import { uniqueTableName } from '../support/storage';

/**
 * The local host runs the timer functions from the same registration the Functions host reads, on their
 * schedules, with the app's services against real storage (Azurite).
 */
describe('timers on the local host', () => {
  beforeAll(async () => {
    Object.assign(process.env, {
      DataTables__connectionString: inject('azuriteConnectionString'),
      TABLE_NAME_PREFIX: uniqueTableName('timer'),
      LOCAL_DEVELOPMENT_MODE: 'true',
    });
    resetServices();
    await loadFunctions(join(__dirname, '..', '..', 'functions'));
  });
  afterAll(() => resetServices());

  it('has the repair job in the table the Azure registration fills, on its Azure schedule', () => {
    expect(timers.map(({ name, schedule }) => ({ name, schedule }))).toContainEqual({
      name: 'repairConnections',
      schedule: '0 */15 * * * *',
    });
    const running = startTimers();
    try {
      const next = running.scheduled.find(({ name }) => name === 'repairConnections')?.next;
      expect(next).toBeInstanceOf(Date);
      expect(next!.getUTCSeconds()).toBe(0);
      expect(next!.getUTCMinutes() % 15).toBe(0);
    } finally {
      running.stop();
    }
  });

  it('runs a timer every second with the services, never overlapping, and goes on after a failed run', async () => {
    const runs: { started: number; ended?: number; tables: number }[] = [];
    const warnings: string[] = [];
    const probe: TimerDefinition = {
      name: 'probe',
      schedule: '* * * * * *',
      handler: async (services) => {
        const run: (typeof runs)[number] = { started: Date.now(), tables: 0 };
        runs.push(run);
        // A real storage round trip through the app's own services (the tables exist once ready).
        const page = await services.connections.list(
          { recordId: '00000000-0000-4000-8000-000000000001' },
          { id: 'admin', teams: [], isAdmin: true },
          { top: 1 },
        );
        run.tables = page.items.length + 1;
        await new Promise((resolve) => setTimeout(resolve, 1200)); // longer than the period: the next tick must wait
        run.ended = Date.now();
        if (runs.length === 1) throw new Error('first run fails on purpose');
      },
    };
    const running = startTimers([probe], () => ({ log: () => undefined, warn: (message) => warnings.push(message) }));
    try {
      await expect
        .poll(() => runs.filter((run) => run.ended !== undefined).length, { timeout: 8000, interval: 100 })
        .toBeGreaterThanOrEqual(2);
    } finally {
      running.stop();
    }
    expect(warnings).toContain('failed: first run fails on purpose');
    expect(runs.every((run) => run.tables === 1)).toBe(true);
    for (let index = 1; index < runs.length; index++)
      expect(runs[index]!.started).toBeGreaterThanOrEqual(runs[index - 1]!.ended ?? Infinity);
  });
});

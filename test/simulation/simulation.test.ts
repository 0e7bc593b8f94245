import { describe, expect, it } from 'vitest';
import { replayCommand, runSchedule } from '../../dev/simulation/runner';

/**
 * The deterministic simulation in `npm test`: 10,000 schedules (seeds 1..10,000), each several clients
 * running the real protocol code over the simulated table service with faults at every storage call,
 * then the repair job and every invariant. A failing seed names the command that replays it.
 * `npm run simulate -- --schedules N --from S` runs longer campaigns.
 */
const SCHEDULES = 10_000;
const CHUNKS = 10;

describe('deterministic simulation of the write protocol', () => {
  for (let chunk = 0; chunk < CHUNKS; chunk++) {
    const from = 1 + chunk * (SCHEDULES / CHUNKS);
    const to = from + SCHEDULES / CHUNKS - 1;
    it(`keeps every invariant in schedules ${from} to ${to}`, async () => {
      const failures: string[] = [];
      let steps = 0;
      for (let seed = from; seed <= to; seed++) {
        const result = await runSchedule(seed);
        steps += result.steps;
        if (result.violations.length > 0)
          failures.push(`seed ${seed}: ${result.violations[0]} (replay: ${replayCommand(seed)})`);
      }
      expect(failures.slice(0, 5)).toEqual([]);
      // The schedules must do something: about twenty storage calls each on average.
      expect(steps / (to - from + 1)).toBeGreaterThan(15);
    }, 120_000);
  }

  it('is deterministic: the same seed gives the same schedule, step for step', async () => {
    const [first, second] = [await runSchedule(4242), await runSchedule(4242)];
    expect(second.trace).toEqual(first.trace);
    expect(first.trace.length).toBeGreaterThan(0);
  });
});

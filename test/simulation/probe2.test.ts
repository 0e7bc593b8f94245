import { expect, it } from 'vitest';
import { runSchedule } from '../../scripts/simulation/simulation';
it('probe2', async () => {
  const result = await runSchedule(Number(process.env.SEED));
  console.log(JSON.stringify(result.plan, null, 0));
  console.log(result.trace.join('\n'));
  console.log(result.violations);
  expect(true).toBe(true);
}, 300_000);

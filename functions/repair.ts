import { app } from '@azure/functions';
import { repairSlice } from '../shared/consistency';
import { insideFunctionsHost } from '../shared/host';
import { getServices } from '../shared/services';

// Anti-entropy: every 15 minutes, up to 4 minutes of repair, resuming where the last slice stopped.
// Every repair is a fenced propagation of the authoritative copy as it is now, so it is safe at any time.
const SCHEDULE = '0 */15 * * * *';
const BUDGET_MS = 4 * 60_000;
// Tombstones are kept this long: longer than any request can live (Functions timeout included), so no
// write of an older version can still arrive once one is purged.
const GRACE_MS = 60 * 60_000;

if (insideFunctionsHost) {
  app.timer('repairConnections', {
    schedule: SCHEDULE,
    handler: async (_timer, context) => {
      const services = getServices();
      await services.ready();
      const result = await repairSlice(services.consistency, BUDGET_MS, GRACE_MS);
      for (const violation of result.violations) context.warn(`repaired ${violation.kind}: ${violation.partitionKey}/${violation.rowKey} (${violation.detail})`);
      context.log(`repair: scanned ${result.scanned}, repaired ${result.repaired}, ${result.next ? 'continues next run' : 'pass complete'}`);
    },
  });
}

import { registerTimer } from '../shared/hosts/azureFunctions/register';
import { FINDING_INVARIANT } from '../shared/protocol/repair/findings';
import { repairSlice } from '../shared/protocol/repair/walker';
import { invariantLabel } from '../shared/protocol/invariants';

// Anti-entropy: every 15 minutes, up to 4 minutes of repair, resuming where the last slice stopped.
// Every repair is a fenced propagation of the authoritative copy as it is now, so it is safe at any time.
const SCHEDULE = '0 */15 * * * *';
const BUDGET_MS = 4 * 60_000;
// Tombstones are kept this long: longer than any request can live (Functions timeout included), so no
// write of an older version can still arrive once one is purged.
const GRACE_MS = 60 * 60_000;

registerTimer({
  name: 'repairConnections',
  schedule: SCHEDULE,
  handler: async (services, log) => {
    const result = await repairSlice(services.consistency, BUDGET_MS, GRACE_MS);
    for (const violation of result.violations)
      log.warn(
        `repaired ${violation.kind} (${invariantLabel(FINDING_INVARIANT[violation.kind])}): ${violation.partitionKey}/${violation.rowKey} (${violation.detail})`,
      );
    log.log(
      `repair: scanned ${result.scanned}, repaired ${result.repaired}, ${result.next ? 'continues next run' : 'pass complete'}`,
    );
  },
});

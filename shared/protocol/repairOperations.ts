// Protocol: the commits of the repair job (and of a change that meets a refused create): demoting a duplicate, ending an id used twice.
import { INACTIVE, statusOfState } from '../domain/connection';
import type { ConnectionStore } from '../storage/connectionStore';
import { commit } from './commit';
import type { Copy, StoredCopy } from './copies';
import { currentIndexKeys, mergedKeys } from './indexKeys';
import type { Propagation } from './propagation';
import { newStamp, REPAIR, withStamp } from './stamps';

export class RepairOperations {
  constructor(
    private readonly store: ConnectionStore,
    private readonly propagation: Propagation,
    private readonly random: () => number,
  ) {}

  /**
   * Deactivates a duplicate active connection that does not hold its guard (data older than this
   * protocol; the repair job's fixed rule picks which one): committed like any change, guard untouched.
   */
  async demoteDuplicate(loser: StoredCopy, now: string): Promise<void> {
    const next: Copy = {
      half: {
        ...loser.half,
        statecode: INACTIVE,
        statuscode: statusOfState[INACTIVE],
        modifiedon: now,
        versionnumber: loser.half.versionnumber + 1,
      },
      tombstone: false,
      lastop: withStamp(loser.lastop, newStamp(this.random, REPAIR)),
      indexed: mergedKeys(loser.indexed, currentIndexKeys(loser.half)),
    };
    await commit(this.store, next, loser, false);
    await this.propagation.propagate(next);
  }

  /**
   * Ends a connection whose derived half's slot belongs to another connection (its id used twice): a
   * tombstone, committed like a delete, whose propagation leaves the other connection's copies alone.
   */
  async endDuplicateId(intruder: StoredCopy, now: string): Promise<void> {
    const next: Copy = {
      half: { ...intruder.half, modifiedon: now, versionnumber: intruder.half.versionnumber + 1 },
      tombstone: true,
      lastop: withStamp(intruder.lastop, newStamp(this.random, REPAIR)),
      indexed: mergedKeys(intruder.indexed, currentIndexKeys(intruder.half)),
    };
    await commit(this.store, next, intruder);
    await this.propagation.propagate(next);
  }
}

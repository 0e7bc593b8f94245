// Protocol, repair: tombstones removed for good once their grace period is over (derived copies first, the authoritative last).
import { derivedOf, entriesOf } from '../propagation';
import { type Copy, pairsWith, type StoredCopy } from '../copies';
import { allSettled } from '../concurrency';

import { roleOfIndexKey } from '../indexKeys';

import { isStorageStatus } from '../../storage/tablePort';
import type { Pass } from './pass';

/**
 * Whether a tombstone's grace period is over: no request still running can then try to write an older
 * version of its connection, which the tombstone would fence out.
 */
export const pastGrace = (pass: Pass, copy: Copy): boolean =>
  pass.clock() - Date.parse(copy.half.modifiedon) >= pass.options.graceMs;

/**
 * Removes a deleted connection for good, once no request can still write an older version of it:
 * tombstones propagated everywhere first (a crash midway leaves only tombstones), then the derived
 * copies, then the authoritative one, each only if unchanged since read.
 */
export async function purgeConnection(pass: Pass, authoritative: StoredCopy): Promise<void> {
  await pass.port.propagate(authoritative);
  const wanted = derivedOf(authoritative);
  const derived = await pass.port.readHalf(wanted.half.record1id, wanted.half.connectionid);
  if (derived?.tombstone && pairsWith(derived.half, authoritative.half))
    await pass.port.deleteConnectionRow(derived.half.record1id, derived.key, derived.etag);
  await allSettled(
    entriesOf(authoritative).map(async ({ roleId, copy }) => {
      const entry = await pass.port.readEntry(roleId, copy.half);
      const ours =
        entry &&
        entry.half.record2id === copy.half.record2id &&
        entry.half.relatedconnectionid === copy.half.relatedconnectionid;
      if (ours && entry.tombstone) await pass.port.deleteIndexRow(roleId, entry.key, entry.etag);
    }),
  );
  await pass.port.purgeAudit(authoritative);
  await pass.port.purgeHalf(authoritative);
}

/**
 * Forgets the tombstones of roles a live connection no longer plays, once their grace period is over:
 * first the authoritative copy stops listing them (a rewrite as read, same version, so it happens
 * only if nothing changed meanwhile), then the entries go (each only if unchanged). Returns how many.
 */
export async function purgeFormerEntries(
  pass: Pass,
  authoritative: StoredCopy,
  former: { key: string; entry: StoredCopy | undefined }[],
): Promise<number> {
  const keys = new Set(former.map(({ key }) => key));
  try {
    await pass.port.rewriteAuthoritative(
      { ...authoritative, indexed: authoritative.indexed.filter((key) => !keys.has(key)) },
      authoritative.etag,
    );
  } catch (error) {
    if (isStorageStatus(error, 412) || isStorageStatus(error, 404)) return 0;
    throw error;
  }
  await allSettled(
    former.flatMap(({ key, entry }) =>
      entry ? [pass.port.deleteIndexRow(roleOfIndexKey(key), entry.key, entry.etag)] : [],
    ),
  );
  return former.length;
}

/**
 * A tombstone no authoritative copy lists any more (a derived half without its authority, an index
 * entry of a role the connection no longer plays): kept while its grace period runs, then removed.
 */
export async function purgeLeftover(pass: Pass, tombstone: Copy, remove: () => Promise<void>): Promise<void> {
  if (!pastGrace(pass, tombstone)) {
    pass.result.skippedRecent++;
    return;
  }
  if (pass.options.repair) {
    await remove();
    pass.result.purged++;
  }
}

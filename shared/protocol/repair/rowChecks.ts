// Protocol, repair: the checks of one row each (a half, a guard, an index entry, a reservation), repairing when asked.
import { derivedOf, entriesOf } from '../propagation';
import { claimsGuard, type Copy, isAuthoritative, isLater, knownVersion, pairsWith, type StoredCopy } from '../copies';
import { sameSlot } from '../claims';
import { allSettled } from '../concurrency';
import { sameContent } from '../../domain/connection';
import { DomainError } from '../../domain/errors';
import { idKeyOf } from '../../domain/ids';

import { currentIndexKeys } from '../indexKeys';
import {
  fromStored,
  guardRowKey,
  halfRowKey,
  isGuardRowKey,
  isHalfRowKey,
  toEntity,
} from '../../storage/connectionStore';
import { indexRowKey, isReservationRowKey, reservationOf } from '../../storage/roleIndexStore';
import { isStorageStatus, type Stored, type TableEntity, type TablePort } from '../../storage/tablePort';
import type { Violation, ViolationKind } from './findings';
import type { Pass } from './pass';
import { pastGrace, purgeConnection, purgeFormerEntries, purgeLeftover } from './purge';

/** A row of the connections table: a half (authoritative or derived) or a guard; other rows are not checked here. */
export async function checkConnectionRow(pass: Pass, stored: Stored): Promise<void> {
  const { rowKey } = stored.entity;
  if (isGuardRowKey(rowKey)) return checkGuard(pass, stored);
  if (!isHalfRowKey(rowKey)) return;
  const copy = fromStored(stored);
  if (isAuthoritative(copy.half)) return checkAuthoritative(pass, copy);
  return checkDerived(pass, copy);
}

/** A row of the role index: an entry or a role reservation. */
export async function checkRoleIndexRow(pass: Pass, stored: Stored): Promise<void> {
  if (isReservationRowKey(stored.entity.rowKey)) return checkReservation(pass, stored);
  return checkIndexEntry(pass, stored);
}

const nowIso = (pass: Pass): string => new Date(pass.clock()).toISOString();

/**
 * A live connection's ids are claimed by its slot. Connections created before claims existed get
 * theirs here (two, when their derived half's id is of the older, name-based kind); a claim held by
 * another live connection is an id used twice by such older data, reported for a person to resolve.
 */
async function checkClaims(pass: Pass, authoritative: StoredCopy): Promise<void> {
  const { half } = authoritative;
  const ids =
    idKeyOf(half.connectionid) === idKeyOf(half.relatedconnectionid)
      ? [half.connectionid]
      : [half.connectionid, half.relatedconnectionid];
  for (const id of ids) {
    const claim = await pass.port.readClaim(id);
    if (claim && sameSlot(claim, half)) continue;
    if (!pass.options.repair) {
      pass.report({
        kind: 'unclaimed-id',
        table: 'connections',
        partitionKey: half.record1id,
        rowKey: authoritative.key,
        detail: `id ${id} is ${claim ? `claimed by ${claim.record1id}/${claim.connectionid}` : 'not claimed'}`,
      });
      continue;
    }
    // Acted on only as the connection is now, not as listed (it may have been deleted since).
    const fresh = await pass.port.readHalf(half.record1id, half.connectionid);
    if (!fresh || fresh.tombstone || fresh.etag !== authoritative.etag) return;
    const now = { ...half, modifiedon: nowIso(pass) };
    try {
      await pass.port.claimId(now, id);
    } catch (error) {
      if (!(error instanceof DomainError && error.code === 'DuplicateRecord')) throw error;
      pass.report({
        kind: 'duplicate-id',
        table: 'connections',
        partitionKey: half.record1id,
        rowKey: authoritative.key,
        detail: `id ${id} is also live in another connection`,
      });
    }
  }
}

/** The derived half and the index entries against the authoritative copy; its claims and guard; tombstone purge. */
async function checkAuthoritative(pass: Pass, authoritative: StoredCopy): Promise<void> {
  const { options, result } = pass;
  const expired = authoritative.tombstone && pastGrace(pass, authoritative);
  if (expired && options.repair) {
    await purgeConnection(pass, authoritative);
    result.purged++;
    return;
  }
  if (authoritative.tombstone && !expired) result.skippedRecent++;
  const found: Violation[] = [];
  // A copy at the same version with other content, or ahead of its authority, is garbage (of an earlier
  // incarnation of the id, or of a write older than this protocol): the fence would keep it, so it is
  // rewritten outright, if still as read, once the authority read after it confirms the listing.
  const rewrite: { table: TablePort; entity: TableEntity; etag: string }[] = [];
  let foreignSlot = false;
  const versionOf = (copy: Copy) => ({ createdon: copy.half.createdon, version: copy.half.versionnumber });
  const compare = (
    copy: StoredCopy | undefined,
    expected: Copy,
    kinds: { missing: ViolationKind; lagging: ViolationKind },
    at: Pick<Violation, 'table' | 'partitionKey' | 'rowKey'>,
  ) => {
    if (!copy) {
      if (!expected.tombstone)
        found.push({
          ...at,
          kind: kinds.missing,
          detail: `copy of ${authoritative.half.connectionid} v${expected.half.versionnumber} missing`,
        });
    } else if (
      copy.half.record2id !== expected.half.record2id ||
      copy.half.relatedconnectionid !== expected.half.relatedconnectionid
    ) {
      // The slot holds another connection's copy: this id is used twice (only data older than this
      // protocol, or a create refused and not undone, can leave that).
      if (!expected.tombstone) foreignSlot = true;
    } else if (isLater(versionOf(expected), versionOf(copy))) {
      found.push({
        ...at,
        kind: kinds.lagging,
        detail: `v${copy.half.versionnumber} behind v${expected.half.versionnumber}`,
      });
    } else if (
      isLater(versionOf(copy), versionOf(expected)) ||
      copy.tombstone !== expected.tombstone ||
      !sameContent(copy.half, expected.half)
    ) {
      found.push({
        ...at,
        kind: 'derived-copy-mismatch',
        detail: `v${copy.half.versionnumber} differs from its authoritative copy v${expected.half.versionnumber}`,
      });
      const table = at.table === 'connections' ? pass.tables.connections : pass.tables.roleIndex;
      rewrite.push({ table, entity: toEntity(expected, at.partitionKey, at.rowKey), etag: copy.etag });
    }
  };
  const wanted = derivedOf(authoritative);
  const derived = await pass.port.readHalf(wanted.half.record1id, wanted.half.connectionid);
  compare(
    derived,
    wanted,
    { missing: 'missing-derived-half', lagging: 'lagging-derived-half' },
    { table: 'connections', partitionKey: wanted.half.record1id, rowKey: halfRowKey(wanted.half.connectionid) },
  );
  if (foreignSlot && derived) return resolveForeignSlot(pass, authoritative, derived);
  // Entries under roles the connection no longer plays: tombstones, kept while the grace period runs.
  const formerEntries: { key: string; entry: StoredCopy | undefined }[] = [];
  const current = new Set<string>(currentIndexKeys(authoritative.half));
  await allSettled(
    entriesOf(authoritative).map(async ({ key, roleId, copy }) => {
      const entry = await pass.port.readEntry(roleId, copy.half);
      compare(
        entry,
        copy,
        { missing: 'missing-index', lagging: 'stale-index' },
        { table: 'roleIndex', partitionKey: roleId, rowKey: indexRowKey(copy.half) },
      );
      if (!authoritative.tombstone && !current.has(key)) formerEntries.push({ key, entry });
    }),
  );
  if (!authoritative.tombstone) await checkClaims(pass, authoritative);
  if (claimsGuard(authoritative)) {
    const holder = await pass.port.guardHolderOf(authoritative.half);
    if (holder?.connectionid !== authoritative.half.connectionid)
      await checkGuardOf(pass, authoritative, holder?.connectionid);
  }
  if (found.length > 0) {
    // Judged against the authoritative copy as listed, a copy may only look behind, ahead or different
    // because a change committed since: the findings stand only if the authority, read after the
    // copies, is still as listed. Otherwise the next pass looks again.
    const fresh = await pass.port.readHalf(authoritative.half.record1id, authoritative.half.connectionid);
    if (!fresh || fresh.etag !== authoritative.etag) return;
  }
  for (const violation of found) pass.report(violation);
  if (found.length > 0 && options.repair) {
    await allSettled(
      rewrite.map(({ table, entity, etag }) =>
        table.write({ op: 'replace', entity, etag }).catch((error: unknown) => {
          if (!isStorageStatus(error, 412) && !isStorageStatus(error, 404)) throw error;
        }),
      ),
    );
    try {
      await pass.port.propagate(authoritative);
    } catch (error) {
      if (!(error instanceof DomainError && error.code === 'DuplicateRecord')) throw error;
      // Another connection took the derived half's slot meanwhile (an id used twice): settled by the rule.
      const occupant = await pass.port.readHalf(wanted.half.record1id, wanted.half.connectionid);
      if (occupant && !pairsWith(occupant.half, authoritative.half))
        return resolveForeignSlot(pass, authoritative, occupant);
      throw error;
    }
    result.repaired += found.length;
  }
  if (found.length === 0 && options.repair) {
    const expiredEntries = formerEntries.filter(({ entry }) => !entry || (entry.tombstone && pastGrace(pass, entry)));
    if (expiredEntries.length > 0) result.purged += await purgeFormerEntries(pass, authoritative, expiredEntries);
  }
}

/**
 * A connection whose derived half's slot holds another connection's copy (its id used twice). The
 * connection that owns the slot (its copy pairs with a live authority) keeps it; this one is ended
 * (a tombstone committed in its place), as a create that met the slot would have been undone.
 */
async function resolveForeignSlot(pass: Pass, authoritative: StoredCopy, occupant: StoredCopy): Promise<void> {
  if (occupant.tombstone) return; // not holding the slot: the next propagation takes it over
  const owner = await pass.port.readHalf(occupant.half.record2id, occupant.half.relatedconnectionid);
  if (!owner || owner.tombstone || !pairsWith(occupant.half, owner.half)) return; // the occupant is itself a leftover: its own check ends it
  pass.report({
    kind: 'duplicate-id',
    table: 'connections',
    partitionKey: authoritative.half.record1id,
    rowKey: authoritative.key,
    detail: `its derived half's slot holds ${occupant.half.connectionid} of another connection`,
  });
  if (!pass.options.repair) return;
  await ignoringRace(pass.port.endDuplicateId(authoritative, nowIso(pass)));
  pass.result.repaired++;
}

/**
 * An active connection whose guard is missing or names another connection. If that other one is a
 * live, active connection with the same records and roles, the two are duplicates: the earliest
 * created (then the lowest id) keeps the guard and stays active, the other is deactivated.
 */
async function checkGuardOf(pass: Pass, authoritative: StoredCopy, holderId: string | undefined): Promise<void> {
  const at = {
    table: 'connections' as const,
    partitionKey: authoritative.half.record1id,
    rowKey: guardRowKey(authoritative.half),
  };
  // Decided on the connection as it is now, not as listed: it may have changed (and let its guard go).
  const fresh = await pass.port.readHalf(authoritative.half.record1id, authoritative.half.connectionid);
  if (!fresh || fresh.etag !== authoritative.etag) return;
  const holder = holderId === undefined ? undefined : await pass.port.readHalf(authoritative.half.record1id, holderId);
  const holderClaims = holder !== undefined && claimsGuard(holder) && guardRowKey(holder.half) === at.rowKey;
  if (!holderClaims) {
    pass.report({
      ...at,
      kind: 'missing-guard',
      detail: `guard of ${authoritative.half.connectionid}${holderId ? ` names ${holderId}` : ''}`,
    });
    if (!pass.options.repair) return;
    await ignoringRace(pass.port.claimGuard(authoritative));
    pass.result.repaired++;
    return;
  }
  pass.report({
    ...at,
    kind: 'duplicate-active',
    detail: `${authoritative.half.connectionid} and ${holder.half.connectionid} share records and roles`,
  });
  if (!pass.options.repair) return;
  const [winner, loser] =
    earliest(holder, authoritative) === holder ? [holder, authoritative] : [authoritative, holder];
  // The winner takes the guard in one transaction with itself as read; only then is the other demoted.
  if (loser === holder) {
    try {
      await pass.port.claimGuard(winner);
    } catch (error) {
      if (isStorageStatus(error, 412) || isStorageStatus(error, 404)) return;
      throw error;
    }
  }
  await ignoringRace(pass.port.demoteDuplicate(loser, nowIso(pass)));
  pass.result.repaired++;
}

/** A guard must name the live, active authoritative half it guards, in its own partition. */
async function checkGuard(pass: Pass, stored: Stored): Promise<void> {
  const { partitionKey, rowKey, connectionid } = stored.entity;
  const holder = typeof connectionid === 'string' ? await pass.port.readHalf(partitionKey, connectionid) : undefined;
  if (holder && claimsGuard(holder) && isAuthoritative(holder.half) && guardRowKey(holder.half) === rowKey) return;
  pass.report({
    kind: 'orphan-guard',
    table: 'connections',
    partitionKey,
    rowKey,
    detail: `names ${String(connectionid)}, which does not hold it`,
  });
  if (!pass.options.repair) return;
  await pass.port.deleteConnectionRow(partitionKey, rowKey, stored.etag);
  pass.result.repaired++;
}

/**
 * A derived half must have its authoritative copy; one without (left by data older than this
 * protocol) is an unfinished delete: it becomes a tombstone, purged after the grace period.
 */
async function checkDerived(pass: Pass, derived: StoredCopy): Promise<void> {
  const authoritative = await pass.port.readHalf(derived.half.record2id, derived.half.relatedconnectionid);
  if (authoritative && pairsWith(derived.half, authoritative.half)) return; // its own walk checks this copy
  if (derived.tombstone)
    return purgeLeftover(pass, derived, () =>
      pass.port.deleteConnectionRow(derived.half.record1id, derived.key, derived.etag),
    );
  pass.report({
    kind: 'orphan-derived-half',
    table: 'connections',
    partitionKey: derived.half.record1id,
    rowKey: derived.key,
    detail: `no authoritative copy ${derived.half.relatedconnectionid}`,
  });
  if (!pass.options.repair) return;
  await pass.port.putDerived(
    {
      ...derived,
      half: { ...derived.half, versionnumber: derived.half.versionnumber + 1, modifiedon: nowIso(pass) },
      tombstone: true,
    },
    knownVersion(derived),
  );
  pass.result.repaired++;
}

/**
 * A role reservation (see RoleReservations, protocol/reservations.ts) is only needed until its connection's commit and index entries
 * are written. Once the grace period is over it is settled: the connection's entries are brought up
 * to date when it has the role (they then show the use), its slot fenced when it has not; either way
 * it is removed.
 */
async function checkReservation(pass: Pass, stored: Stored): Promise<void> {
  const reservation = reservationOf(stored.entity, stored.etag);
  const { options } = pass;
  if (!options.repair || pass.clock() - Date.parse(reservation.reservedon) < (options.settleAfterMs ?? options.graceMs))
    return;
  if (await pass.port.settleReservation(reservation, nowIso(pass))) {
    const held = await pass.port.readHalf(reservation.slot.record1id, reservation.slot.connectionid);
    if (!held) return;
    await pass.port.propagate(held);
    await pass.port.deleteIndexRow(reservation.roleId, reservation.rowKey, reservation.etag);
  }
  pass.result.repaired++;
}

/**
 * Every index entry belongs to a connection whose authoritative copy lists it (then the halves' phase
 * checks it); any other entry is a leftover: a tombstone is purged after the grace period, a live one removed.
 */
async function checkIndexEntry(pass: Pass, stored: Stored): Promise<void> {
  const entry = fromStored(stored);
  const roleId = stored.entity.partitionKey;
  const { half } = entry;
  const authoritative = await pass.port.readHalf(
    ...(isAuthoritative(half)
      ? ([half.record1id, half.connectionid] as const)
      : ([half.record2id, half.relatedconnectionid] as const)),
  );
  const key = `${isAuthoritative(half) ? 'a' : 'd'}:${roleId}`;
  const owns =
    authoritative &&
    (isAuthoritative(half) ? authoritative.half.record2id === half.record2id : pairsWith(half, authoritative.half));
  if (owns && (authoritative.indexed.includes(key) || (currentIndexKeys(authoritative.half) as string[]).includes(key)))
    return;
  if (entry.tombstone)
    return purgeLeftover(pass, entry, () => pass.port.deleteIndexRow(roleId, stored.entity.rowKey, stored.etag));
  pass.report({
    kind: 'orphan-index',
    table: 'roleIndex',
    partitionKey: roleId,
    rowKey: stored.entity.rowKey,
    detail: `no connection ${half.connectionid} with this role`,
  });
  if (!pass.options.repair) return;
  await pass.port.deleteIndexRow(roleId, stored.entity.rowKey, stored.etag);
  pass.result.repaired++;
}

/** A repair conditional on what it read: when that changed meanwhile (412, 404), the next pass looks again. */
async function ignoringRace(write: Promise<void>): Promise<void> {
  try {
    await write;
  } catch (error) {
    if (!isStorageStatus(error, 412) && !isStorageStatus(error, 404)) throw error;
  }
}

/** The duplicate that stays: the earliest created, then the lowest id. */
function earliest(a: StoredCopy, b: StoredCopy): StoredCopy {
  if (a.half.createdon !== b.half.createdon) return a.half.createdon < b.half.createdon ? a : b;
  return a.half.connectionid < b.half.connectionid ? a : b;
}

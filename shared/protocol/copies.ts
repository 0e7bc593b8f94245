// Protocol: the copy model (authoritative half, derived copies, tombstones, fences) and the fence rule of derived writes.
import { ACTIVE, type ConnectionHalf, reciprocalOf } from '../domain/connection';
import { conflict, type DomainError, unavailable } from '../domain/errors';
import type { ConnectionStore, RowVersion } from '../storage/connectionStore';
import type { RoleIndexStore } from '../storage/roleIndexStore';
import { isStorageStatus } from '../storage/tablePort';

/**
 * A copy of a connection as stored: its half, whether it is a tombstone (the connection was deleted at
 * this version), and, on the authoritative copy only, the stamps of the latest commits and the
 * role-index entries that may still hold a live copy.
 */
export interface Copy {
  half: ConnectionHalf;
  tombstone: boolean;
  /** Authoritative copy only: stamps of the latest commits, newest last (see stamps.ts; '' elsewhere). */
  lastop: string;
  /** Authoritative copy only: index keys (see IndexKey) that may hold a live entry ([] elsewhere). */
  indexed: string[];
}

export interface StoredCopy extends Copy {
  /** Storage ETag of this entity, for conditional writes. */
  etag: string;
  /** RowKey of the entity it was read from (a half, or an index entry), for paging. */
  key: string;
}

/**
 * Whether a half is the authoritative one of its connection: the one in the lower record's partition.
 * Every change is decided and committed there; every other copy is derived from it.
 */
export const isAuthoritative = (half: Pick<ConnectionHalf, 'record1id' | 'record2id'>): boolean =>
  half.record1id < half.record2id;

export const authoritativeOf = (half: ConnectionHalf): ConnectionHalf =>
  isAuthoritative(half) ? half : reciprocalOf(half);

/** What readers see: tombstones are the protocol's, never a client's. */
export const isLive = (copy: Pick<Copy, 'tombstone'>): boolean => !copy.tombstone;

/** Whether a copy claims the uniqueness guard: a live, active connection. */
export const claimsGuard = (copy: Copy): boolean => !copy.tombstone && copy.half.statecode === ACTIVE;

/** Whether a copy is a fence's tombstone (version 0): it stands for no connection, and has no other copies. */
export const isFence = (copy: Copy): boolean => copy.tombstone && copy.half.versionnumber === 0;

/** Whether a derived copy and an authoritative one are two halves of one connection. */
export const pairsWith = (derived: ConnectionHalf, authoritative: ConnectionHalf): boolean =>
  authoritative.record2id === derived.record1id &&
  authoritative.relatedconnectionid === derived.connectionid &&
  derived.record2id === authoritative.record1id &&
  derived.relatedconnectionid === authoritative.connectionid;

/**
 * Where a copy stands in its connection's history. Versions order the changes of one incarnation; a
 * connection id deleted, purged and created again starts a new incarnation with a later `createdon`,
 * so a late write of the old one still loses.
 */
export interface CopyVersion {
  createdon: string;
  version: number;
}

/** Whether `a` is a later state than `b`. */
export const isLater = (a: CopyVersion, b: CopyVersion): boolean =>
  a.createdon > b.createdon || (a.createdon === b.createdon && a.version > b.version);

/** The version, owner and ETag of a copy as last read. */
export interface KnownVersion extends CopyVersion {
  etag: string;
  tombstone: boolean;
  /** Whose copy it is: the half it pairs with ("<record2id>/<relatedconnectionid>"). */
  owner: string;
}

const ownerOf = (half: Pick<ConnectionHalf, 'record2id' | 'relatedconnectionid'>): string =>
  `${half.record2id}/${half.relatedconnectionid}`;

export const knownVersion = (copy: StoredCopy): KnownVersion => ({
  createdon: copy.half.createdon,
  version: copy.half.versionnumber,
  etag: copy.etag,
  tombstone: copy.tombstone,
  owner: ownerOf(copy.half),
});

const knownVersionOfRow = (row: RowVersion): KnownVersion => ({
  createdon: row.createdon,
  version: row.versionnumber,
  etag: row.etag,
  tombstone: row.tombstone,
  owner: ownerOf(row),
});

/** The slot a copy would go to holds a copy of another connection (a connection id used twice). */
export const foreignCopy = (): DomainError =>
  conflict(
    'DuplicateRecord',
    'This connection id is already used by a connection between other records: choose another connectionid.',
  );

/** Where a derived copy goes: a read of what is stored there, and an insert (etag null) or conditional replace. */
export interface DerivedSlot {
  read(): Promise<RowVersion | null>;
  write(etag: string | null): Promise<void>;
}

const MAX_FENCE_ROUNDS = 10;

/**
 * Writes a derived copy (the derived half, an index entry) so that it only ever moves forward: it
 * replaces what is stored only when that is an earlier state of the same connection, and otherwise
 * leaves it. Any process may repeat it at any time, in any order, with any older or newer version, and
 * the copy still ends at the latest state written. A slot held by another connection's copy is never
 * written: a live copy is refused (foreignCopy), a tombstone is simply not needed there. `known` is the
 * stored copy when the caller has just read it, or null when it is believed absent (a first write tries
 * an insert without reading).
 */
export async function fencedPut(
  slot: DerivedSlot,
  copy: Copy,
  known?: KnownVersion | null,
): Promise<'ours' | 'foreign'> {
  const wanted: CopyVersion = { createdon: copy.half.createdon, version: copy.half.versionnumber };
  const owner = ownerOf(copy.half);
  let current = known;
  for (let round = 0; round < MAX_FENCE_ROUNDS; round++) {
    if (current === undefined) {
      const stored = await slot.read();
      current = stored ? knownVersionOfRow(stored) : null;
    }
    if (current !== null && current.owner !== owner) {
      // Another connection's copy (live, or its tombstone until the grace period is over) holds the slot.
      if (copy.tombstone) return 'foreign';
      throw foreignCopy();
    }
    if (current !== null && !isLater(wanted, current)) return 'ours';
    try {
      await slot.write(current === null ? null : current.etag);
      return 'ours';
    } catch (error) {
      // Someone else wrote it meanwhile (409: it appeared, 412: it changed, 404: it was purged): look again.
      if (!isStorageStatus(error, 409) && !isStorageStatus(error, 412) && !isStorageStatus(error, 404)) throw error;
      current = undefined;
    }
  }
  throw unavailable('A copy of the connection is being written by many requests at once; retry the request.', 1);
}

/** The slot of a derived half (in its record's partition of the connections table). */
export const derivedHalfSlot = (store: ConnectionStore, copy: Copy): DerivedSlot => ({
  read: () => store.readVersion(copy.half),
  write: (etag) => store.write(copy, etag),
});

/** The slot of an index entry: `copy.half` under `roleId` (the role its record 1 plays now, or played before). */
export const indexEntrySlot = (index: RoleIndexStore, roleId: string, copy: Copy): DerivedSlot => ({
  read: () => index.readVersion(roleId, copy.half),
  write: (etag) => index.write(roleId, copy, etag),
});

// Protocol, repair: the narrow interface the repair walk works through: the protocol's repair primitives and the store operations it needs.
import { type Copy, type KnownVersion, type StoredCopy } from '../copies';
import type { ConnectionHalf } from '../../domain/connection';
import type { IdClaim } from '../../storage/connectionStore';
import type { Reservation } from '../../storage/roleIndexStore';

/**
 * Everything the repair walk does to the tables beyond scanning them, and nothing more. Built in the
 * composition root (shared/useCases/services.ts) from the protocol and its stores, so the walker needs
 * none of their other operations and they need not show it their collaborators.
 */
export interface RepairPort {
  // The protocol's repair primitives: each writes as the protocol's own requests do (committed, fenced,
  // stamped), so a repair racing live requests cannot take a copy back to an older version.

  /** Brings every derived copy (the derived half, each index entry) to the authoritative copy's version. */
  propagate(authoritative: Copy): Promise<void>;
  /**
   * Makes sure `id` is claimed by the connection's slot (written only when missing, taking over a claim
   * no live connection owns); DuplicateRecord when another live connection owns it.
   */
  claimId(authoritative: ConnectionHalf, id: string): Promise<void>;
  /** Deactivates a duplicate active connection that does not hold its guard (a commit, guard untouched). */
  demoteDuplicate(loser: StoredCopy, now: string): Promise<void>;
  /** Ends a connection whose derived half's slot belongs to another connection: a tombstone committed like a delete. */
  endDuplicateId(intruder: StoredCopy, now: string): Promise<void>;
  /** Settles a role reservation: true when its connection has the role, otherwise its slot is fenced and it is removed. */
  settleReservation(reservation: Reservation, now: string): Promise<boolean>;
  /** Lifts the marks of role deletions that stopped more than `staleMs` ago; returns how many. */
  clearStaleRoleMarks(now: number, staleMs: number): Promise<number>;

  // The connections table, as its store reads and writes it.

  /** A half (authoritative or derived) at its slot, tombstones included. */
  readHalf(recordId: string, connectionId: string): Promise<StoredCopy | undefined>;
  readClaim(connectionId: string): Promise<IdClaim | undefined>;
  /** The connection holding the guard an authoritative half would take, if any. */
  guardHolderOf(authoritative: ConnectionHalf): Promise<{ connectionid: string } | undefined>;
  /** The guard taken by (or moved to) an active authoritative half, in one transaction with it as read. */
  claimGuard(authoritative: StoredCopy): Promise<void>;
  /** Writes a derived half, version-fenced against the version known. */
  putDerived(copy: Copy, known: KnownVersion): Promise<'ours' | 'foreign'>;
  /** Rewrites the authoritative copy as it is (its bookkeeping only), if unchanged since read. */
  rewriteAuthoritative(copy: Copy, etag: string): Promise<void>;
  /** Deletes a row of the connections table (a guard, a derived tombstone) if unchanged since read. */
  deleteConnectionRow(partitionKey: string, rowKey: string, etag: string): Promise<void>;
  /** Removes the audit records of a purged connection's incarnation. */
  purgeAudit(authoritative: StoredCopy): Promise<void>;
  /** Deletes a tombstone if it is still the one read (its grace period over). */
  purgeHalf(tombstone: StoredCopy): Promise<void>;

  // The role index.

  /** The index entry of a half under a role, if any. */
  readEntry(roleId: string, half: ConnectionHalf): Promise<StoredCopy | undefined>;
  /** Deletes an index row (an entry or a reservation) if unchanged since read. */
  deleteIndexRow(roleId: string, rowKey: string, etag: string): Promise<void>;
}

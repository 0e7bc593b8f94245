// Protocol: a commit on an authoritative copy: its version, its audit record and the move of its guard, in one transaction.
import { type AuditRecord, changesBetween, operationOf } from '../domain/audit';
import { masterOf } from '../domain/connection';
import type { ConnectionStore } from '../storage/connectionStore';
import { claimsGuard, type Copy, type StoredCopy } from './copies';
import { byRepair } from './stamps';

/** The audit record of a commit (pure): what `next` changed from `previous`, in the master's orientation. */
export function auditOf(next: Copy, previous: Copy | undefined): AuditRecord {
  const before = previous && !previous.tombstone ? masterOf(previous.half) : undefined;
  const after = masterOf(next.half);
  return {
    operation: operationOf(before, after, next.tombstone, byRepair(next.lastop)),
    userid: next.half.modifiedby,
    createdon: next.half.modifiedon,
    versionnumber: next.half.versionnumber,
    changes: changesBetween(before, after),
  };
}

/**
 * Commits a version of a connection on its authoritative copy: one entity group transaction that
 * inserts it (no `previous`) or replaces `previous` if its ETag still matches, with its audit record,
 * and moves the guard with it. The guard only ever changes in the same transaction as its half, so it
 * always names the live, active authoritative half it guards, and can be deleted without a check
 * (`holdsGuard` false is for the repair job's demotion of a duplicate, which never held it). Throws 409
 * (the row exists, or another connection holds the guard) or 412 (the copy changed) and writes nothing.
 */
export function commit(
  store: ConnectionStore,
  next: Copy,
  previous: StoredCopy | undefined,
  holdsGuard = true,
): Promise<void> {
  return store.commit(next, previous, auditOf(next, previous), {
    release: previous !== undefined && holdsGuard && claimsGuard(previous),
    take: claimsGuard(next),
  });
}

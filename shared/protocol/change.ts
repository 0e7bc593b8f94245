// Protocol: changing a connection in two steps around the use case's decision: read and help (beginChange), then commit and propagate (commitChange).
import { type ConnectionHalf, etagOf, masterOf } from '../domain/connection';
import { DomainError, notFound, preconditionFailed, unavailable } from '../domain/errors';
import { type IfMatch, meetsIfMatch } from '../domain/preconditions';
import type { ConnectionStore } from '../storage/connectionStore';
import { isStorageStatus } from '../storage/tablePort';
import type { ProtocolOptions } from './claims';
import { commit } from './commit';
import { jitteredPause } from './concurrency';
import type { Conflicts, PairTaken } from './conflicts';
import {
  authoritativeOf,
  type Copy,
  isAuthoritative,
  type KnownVersion,
  knownVersion,
  pairsWith,
  type StoredCopy,
} from './copies';
import { currentIndexKeys, mergedKeys } from './indexKeys';
import type { Propagation } from './propagation';
import type { RepairOperations } from './repairOperations';
import { fieldsOf, type RoleReservations } from './reservations';
import { Seal, type Sealed } from './sealed';
import { landed, latestRequest, newStamp, withStamp } from './stamps';

export type Decision =
  /** Nothing to change: the copies are only brought up to date. */
  | { kind: 'keep' }
  /** The new state of the connection, in the orientation it was given in (the master's). */
  | { kind: 'write'; half: ConnectionHalf }
  /** Delete it; `half` is the last state (who deleted it and when, version + 1). */
  | { kind: 'delete'; half: ConnectionHalf };

export interface ChangeRequest {
  /** Fingerprint of the request (see fingerprintOf): equal for a retry of the same request. */
  fingerprint: string;
  ifMatch?: IfMatch | undefined;
}

/**
 * A change between its reads and its commit: what the protocol read, for the use case to decide on
 * (`current`, the master half) and hand back with its Decision (commitChange). Sealed: the use case
 * cannot read it.
 */
export type PendingChange = Sealed<'PendingChange'>;

interface ChangeInProgress {
  readonly recordId: string;
  readonly connectionId: string;
  readonly request: ChangeRequest;
  readonly round: number;
  readonly target: StoredCopy;
  readonly authoritative: StoredCopy;
  readonly derived: KnownVersion | undefined;
}

const changesInProgress = new Seal<'PendingChange', ChangeInProgress>();

/** Where a change stands: waiting for the use case's decision, finished, or refused because the pair is taken. */
export type ChangeStep =
  | { kind: 'decide'; current: ConnectionHalf; pending: PendingChange }
  | { kind: 'done'; result: ChangeResult }
  | PairTaken;

export interface ChangeResult {
  /** The connection after the request, in the master's orientation. */
  master: ConnectionHalf;
  /** The half the URL named, as read. */
  target: StoredCopy;
  /** Whether it is deleted now. */
  deleted: boolean;
  /** Whether nothing was written (nothing to change, or a retry of a request already applied). */
  unchanged: boolean;
}

// Conditional writes that lose a race re-read and try again; many writers on one connection need more
// rounds, spread out by a random pause so they stop colliding.
const MAX_CONTENDED_ROUNDS = 20;

export const connectionNotFound = (): DomainError =>
  notFound('No such connection for this record.', 'ConnectionNotFound');

const done = (master: ConnectionHalf, target: StoredCopy, unchanged: boolean, deleted: boolean): ChangeStep => ({
  kind: 'done',
  result: { master, target, unchanged, deleted },
});

function checkIfMatch(ifMatch: IfMatch | undefined, half: ConnectionHalf): void {
  if (!meetsIfMatch(ifMatch, etagOf(half))) {
    throw preconditionFailed(
      'The connection has changed since it was read (If-Match does not match its ETag): read it again.',
    );
  }
}

/** Whether two halves are the same connection's authoritative half, in the same incarnation. */
const sameIncarnation = (next: ConnectionHalf, read: ConnectionHalf): boolean =>
  next.record1id === read.record1id &&
  next.record2id === read.record2id &&
  next.connectionid === read.connectionid &&
  next.createdon === read.createdon;

export class Changes {
  constructor(
    private readonly store: ConnectionStore,
    private readonly reservations: RoleReservations,
    private readonly propagation: Propagation,
    private readonly conflicts: Conflicts,
    private readonly repairs: RepairOperations,
    private readonly options: ProtocolOptions,
  ) {}

  /** The half a URL names and its connection's authoritative copy; undefined when there is no such half. */
  async locate(
    recordId: string,
    connectionId: string,
  ): Promise<{ target: StoredCopy; authoritative: StoredCopy } | undefined> {
    const target = await this.store.read(recordId, connectionId);
    if (!target) return undefined;
    if (isAuthoritative(target.half)) return { target, authoritative: target };
    const authoritative = await this.store.read(target.half.record2id, target.half.relatedconnectionid);
    // A derived copy without its authority (or whose slot there holds another connection) is a leftover
    // the repair job removes: not a connection.
    return authoritative && pairsWith(target.half, authoritative.half) ? { target, authoritative } : undefined;
  }

  /**
   * The one way an existing connection changes, in two steps around the use case's decision. beginChange
   * locates it through the URL's half, helps finish whatever an earlier request left, and hands the
   * current state (the master half) to the use case; commitChange takes its Decision, commits it on the
   * authoritative copy and propagates. A lost race is a new round: the use case decides again on the
   * newer version (`decide` again), where If-Match is checked against the connection's version.
   */
  beginChange(recordId: string, connectionId: string, request: ChangeRequest): Promise<ChangeStep> {
    return this.changeRound(recordId, connectionId, request, 0);
  }

  private async changeRound(
    recordId: string,
    connectionId: string,
    request: ChangeRequest,
    round: number,
  ): Promise<ChangeStep> {
    if (round >= MAX_CONTENDED_ROUNDS)
      throw unavailable('The connection is being changed by many requests at once; retry the request.', 1);
    const located = await this.locate(recordId, connectionId);
    if (!located) throw connectionNotFound();
    const { target, authoritative } = located;
    // The derived half, as the URL's read gave it or read now (propagation then needs no second read).
    const inDerivedSlot =
      target === authoritative
        ? await this.store.read(authoritative.half.record2id, authoritative.half.relatedconnectionid)
        : target;
    if (inDerivedSlot && !inDerivedSlot.tombstone && !pairsWith(inDerivedSlot.half, authoritative.half)) {
      // Its derived half's slot holds another connection's copy: this one was a create of an id used
      // twice that was refused (and not undone before its caller went away). It is not a connection.
      if (!authoritative.tombstone)
        await this.repairs.endDuplicateId(authoritative, authoritative.half.modifiedon).catch(() => undefined);
      throw connectionNotFound();
    }
    // Another connection's tombstone in the slot: unknown to this one (propagation decides).
    const derived =
      inDerivedSlot && pairsWith(inDerivedSlot.half, authoritative.half) ? knownVersion(inDerivedSlot) : undefined;
    if (latestRequest(authoritative.lastop) === request.fingerprint) {
      await this.propagateChanged(authoritative, derived);
      return done(masterOf(authoritative.half), target, true, authoritative.tombstone);
    }
    if (authoritative.tombstone) {
      await this.propagateChanged(authoritative, derived);
      throw connectionNotFound();
    }
    return {
      kind: 'decide',
      current: masterOf(authoritative.half),
      pending: changesInProgress.seal({
        recordId,
        connectionId,
        request,
        round,
        target,
        authoritative,
        derived,
      }),
    };
  }

  /** Commits the use case's decision on the state `pending` read (see beginChange). */
  async commitChange(pending: PendingChange, decision: Decision): Promise<ChangeStep> {
    const { recordId, connectionId, request, round, target, authoritative, derived } = changesInProgress.open(pending);
    checkIfMatch(request.ifMatch, authoritative.half);
    if (decision.kind === 'keep') {
      await this.propagateChanged(authoritative, derived);
      return done(masterOf(authoritative.half), target, true, false);
    }
    const nextHalf = authoritativeOf(decision.half);
    if (!sameIncarnation(nextHalf, authoritative.half))
      throw new Error('A decision must change the connection the protocol read, not another one.');
    const stamp = newStamp(this.options.random, request.fingerprint);
    const next: Copy = {
      half: { ...nextHalf, versionnumber: authoritative.half.versionnumber + 1 },
      tombstone: decision.kind === 'delete',
      lastop: withStamp(authoritative.lastop, stamp),
      indexed: mergedKeys(authoritative.indexed, currentIndexKeys(authoritative.half), currentIndexKeys(nextHalf)),
    };
    await this.reservations.reserve(next.half, authoritative, fieldsOf(decision.half));
    try {
      await commit(this.store, next, authoritative);
    } catch (error) {
      if (!isStorageStatus(error, 409) && !isStorageStatus(error, 412) && !isStorageStatus(error, 404)) throw error;
      // The storage SDK retries a commit whose answer was lost; the retry then fails on the ETag the
      // first attempt changed. Whether this call's commit landed (even if others came after it)
      // decides the answer.
      const now = await this.store.read(authoritative.half.record1id, authoritative.half.connectionid);
      if (now && landed(now.lastop, stamp)) {
        // Answered with what this call committed (later changes may have followed it).
        await this.propagateChanged(now, derived);
        return done(masterOf(next.half), target, false, next.tombstone);
      }
      if (isStorageStatus(error, 409)) {
        const holder = await this.conflicts.holderSeenFrom(next.half, recordId);
        if (holder !== undefined) return holder;
        // The guard was released meanwhile: decide again.
      }
      // Changed meanwhile (or only rewritten by the repair job): decided again on what is there now,
      // where If-Match is checked against the connection's version, not the storage ETag.
      await jitteredPause(this.options, round);
      return this.changeRound(recordId, connectionId, request, round + 1);
    }
    await this.propagateChanged(next, derived);
    return done(masterOf(next.half), target, false, next.tombstone);
  }

  /**
   * Propagation within a change. If the derived half's slot turns out to hold another connection (it took
   * the slot after this one was checked), this one is a refused create of an id used twice: it is ended,
   * and is not found.
   */
  private async propagateChanged(authoritative: StoredCopy | Copy, derived?: KnownVersion | null): Promise<void> {
    try {
      await this.propagation.propagate(authoritative, derived);
    } catch (error) {
      if (!(error instanceof DomainError && error.code === 'DuplicateRecord')) throw error;
      const current = await this.store.read(authoritative.half.record1id, authoritative.half.connectionid);
      if (current && !current.tombstone)
        await this.repairs.endDuplicateId(current, current.half.modifiedon).catch(() => undefined);
      throw connectionNotFound();
    }
  }
}

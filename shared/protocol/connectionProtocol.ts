import { createHash } from 'node:crypto';
import { allSettled, jitteredPause, type Waiting } from './concurrency';
import { type ConnectionHalf, etagOf, INACTIVE, masterOf, reciprocalOf, statusOfState } from '../domain/connection';
import { conflict, DomainError, notFound, preconditionFailed, unavailable } from '../domain/errors';
import { type ConnectionStore, guardRowKey } from '../storage/connectionStore';
import { fenceSlot, ownsIdOf, sameSlot, slotOf } from './claims';
import { commit } from './commit';
import {
  authoritativeOf,
  claimsGuard,
  type Copy,
  derivedHalfSlot,
  fencedPut,
  indexEntrySlot,
  isAuthoritative,
  isFence,
  type KnownVersion,
  knownVersion,
  pairsWith,
  type StoredCopy,
} from './copies';
import type { RoleUsage } from './roleUsage';
import { type IfMatch, meetsIfMatch } from '../domain/preconditions';
import { currentIndexKeys, isAuthoritativeEntry, roleOfIndexKey } from './indexKeys';
import { latestRequest, REPAIR, stampsIn, UNDO } from './stamps';
import type { RoleIndexStore } from '../storage/roleIndexStore';
import { isStorageStatus } from '../storage/tablePort';

/**
 * The write protocol of a connection, in one place. A connection is stored as copies in several
 * partitions (its two halves, role-index entries) and Table Storage has no transaction across them, so:
 *
 * 1. **One authority.** The half in the partition of the lower record id is authoritative. Every
 *    change is decided on it (access, If-Match, what to write) and is one ETag-conditional entity group
 *    transaction there: the half at version + 1 and the move of its uniqueness guard. That commit is the
 *    linearisation point: a change either committed or did not.
 * 2. **Commit, then propagate.** Every other copy is derived from the authoritative one and written by a
 *    fenced write (fencedPut): a copy is only ever replaced by a later state of the same connection
 *    (ordered by incarnation, then version), never by another connection's. Propagating is idempotent
 *    and order-free, so anyone may repeat it at any time.
 * 3. **Tombstones.** A delete commits a tombstone (version + 1) and propagates tombstones to every copy,
 *    so a late propagation of an older version finds a newer copy and stops: nothing deleted comes back.
 *    The repair job removes tombstones once no request that could still write an older version can be
 *    alive (the grace period).
 * 4. **Helping.** Every write through either half first reads the authoritative copy and propagates it
 *    before answering, whatever it then decides; so a retry finishes what an interrupted attempt left,
 *    and a 2xx always means every copy shows the change.
 * 5. **Recognised retries.** The commit records the request's fingerprint (caller, operation, target,
 *    body, If-Match) and a nonce of the call that made it; `lastop` keeps the last eight such stamps. A
 *    request whose fingerprint is the latest was already applied (its answer was lost): it is answered
 *    as the first attempt was, after propagating, never with a 404, 409 or 412. A commit that fails on
 *    an ETag its own call changed (the storage SDK resent it after a lost response) is recognised by
 *    its nonce among the stamps, even if other changes came after it, and is a success.
 */


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
 * (`current`, the master half) and hand back with its Decision (commitChange). Opaque to the use case.
 */
export interface PendingChange {
  readonly recordId: string;
  readonly connectionId: string;
  readonly request: ChangeRequest;
  readonly round: number;
  readonly target: StoredCopy;
  readonly authoritative: StoredCopy;
  readonly derived: KnownVersion | undefined;
}

/** The pair is taken by another connection: `holder` (its master half) for the use case to name, or not, by access. */
export interface PairTaken {
  kind: 'exists';
  holder: ConnectionHalf;
  /** The holder's id as seen from the record the request came through. */
  id: string;
}

/** Where a change stands: waiting for the use case's decision, finished, or refused because the pair is taken. */
export type ChangeStep =
  | { kind: 'decide'; current: ConnectionHalf; pending: PendingChange }
  | { kind: 'done'; result: ChangeResult }
  | PairTaken;

/**
 * What a create came to: done (created, or a retry of the very request), the pair taken, or a
 * connection with this id between the same records that only the use case can judge to be what the
 * caller asked for (a repeat, answered with it: finishRepeat) or not (`refusal` is the answer).
 */
export type CreateOutcome =
  | { kind: 'done'; master: ConnectionHalf; created: boolean }
  | PairTaken
  | { kind: 'judgeRepeat'; existing: ConnectionHalf; pending: PendingRepeat; refusal: DomainError };

/** An existing connection a create may be a repeat of (opaque to the use case). */
export interface PendingRepeat {
  readonly existing: StoredCopy;
}

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

/** How the protocol waits before another round after losing a race (simulated in tests), and its claims' grace. */
export interface ProtocolOptions extends Waiting {
  /**
   * How long a claim on an id whose slot is still empty is left to the create that made it before
   * another create may take it over (default CLAIM_GRACE_MS). Only liveness depends on it: a takeover
   * fences the slot first, so the create it overtakes can no longer commit.
   */
  claimGraceMs?: number;
}

/** A create normally commits milliseconds after claiming its id; one that took longer may be overtaken. */
export const CLAIM_GRACE_MS = 60_000;
const MAX_CLAIM_ROUNDS = 10;

const MAX_CREATE_ROUNDS = 5;
// Conditional writes that lose a race re-read and try again; many writers on one connection need more
// rounds, spread out by a random pause so they stop colliding.
const MAX_CONTENDED_ROUNDS = 20;

/** A stable fingerprint of a request's parts (object keys sorted, so equal bodies give equal prints). */
export function fingerprintOf(parts: unknown[]): string {
  const canonical = JSON.stringify(parts, (_key, value: unknown) =>
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : value);
  return createHash('sha256').update(canonical).digest('base64url').slice(0, 22);
}


const union = (...lists: string[][]): string[] => [...new Set(lists.flat())].sort();

/**
 * `lastop` holds the stamps ("<fingerprint>.<nonce>") of the latest commits, newest last: the newest
 * tells which request made the current state, all of them whether one call's commit landed.
 */
const RECENT_STAMPS = 8;
const withStamp = (lastop: string, stamp: string): string => [...stampsIn(lastop), stamp].slice(-RECENT_STAMPS).join(' ');
/** Whether a call's commit landed (its stamp is among the latest), whatever came after it. */
const landed = (lastop: string, stamp: string): boolean => stampsIn(lastop).includes(stamp);

/** The copy of the other half that an authoritative copy stands for. */
export const derivedOf = (authoritative: Copy): Copy => ({ half: reciprocalOf(authoritative.half), tombstone: authoritative.tombstone, lastop: '', indexed: [] });

/**
 * The index entries an authoritative copy stands for: a live copy under each role a half plays now, a
 * tombstone under each role it played before (or every role, when the connection is deleted).
 */
export function entriesOf(authoritative: Copy): { key: string; roleId: string; copy: Copy }[] {
  const current = new Set<string>(authoritative.tombstone ? [] : currentIndexKeys(authoritative.half));
  return union(authoritative.indexed, currentIndexKeys(authoritative.half)).map((key) => {
    const half = isAuthoritativeEntry(key) ? authoritative.half : reciprocalOf(authoritative.half);
    return { key, roleId: roleOfIndexKey(key), copy: { half, tombstone: !current.has(key), lastop: '', indexed: [] } };
  });
}

/** The id belongs to another connection (or another create is claiming it). */
const duplicateId = (connectionId: string): DomainError =>
  conflict('DuplicateRecord', `A different connection with id ${connectionId} already exists.`, { connectionid: connectionId });

const connectionNotFound = (): DomainError => notFound('No such connection for this record.', 'ConnectionNotFound');

/**
 * The pair is taken. The existing connection is named only to a caller who may read it (the use case
 * judges `visible`): anyone else
 * learns that the pair is taken (the uniqueness rule cannot hide that), and nothing about the
 * connection itself.
 */
export const connectionExists = (holder: { id: string; visible: boolean }): DomainError =>
  holder.visible
    ? conflict('ConnectionExists', `An active connection between these records with these roles already exists: ${holder.id}.`, { existingconnectionid: holder.id })
    : conflict('ConnectionExists', 'An active connection between these records with these roles already exists.');

/** The field a client named a role in, by the master's orientation (for a refusal). */
const fieldsOf = (master: ConnectionHalf) => (roleId: string): string => (master.record1roleid === roleId ? 'record1roleid' : 'record2roleid');

const done = (master: ConnectionHalf, target: StoredCopy, unchanged: boolean, deleted: boolean): ChangeStep =>
  ({ kind: 'done', result: { master, target, unchanged, deleted } });

function checkIfMatch(ifMatch: IfMatch | undefined, half: ConnectionHalf): void {
  if (!meetsIfMatch(ifMatch, etagOf(half))) {
    throw preconditionFailed('The connection has changed since it was read (If-Match does not match its ETag): read it again.');
  }
}

export class ConnectionProtocol {
  constructor(
    readonly store: ConnectionStore,
    readonly index: RoleIndexStore,
    readonly usage: RoleUsage,
    private readonly options: ProtocolOptions,
  ) {}

  /** A `lastop` for one call of a request: its fingerprint, and a nonce only this call has. */
  private stamp(fingerprint: string): string {
    const draw = () => Math.floor(this.options.random() * 2 ** 48).toString(36);
    return `${fingerprint}.${draw()}${draw()}`;
  }

  private pause(round: number): Promise<void> {
    return jitteredPause(this.options, round);
  }

  /**
   * Brings every derived copy (the other half, each index entry) to the authoritative copy's version.
   * `derived` is the other half's version as just read, or null when it is known to be absent.
   */
  async propagate(authoritative: Copy, derived?: KnownVersion | null, entriesAbsent = false): Promise<void> {
    if (isFence(authoritative)) return; // no connection ever committed there: nothing derived
    // The other half first: if its slot holds another connection (an id used twice), this connection
    // is refused there, before it has written anything else outside its own partition.
    const slot = await this.putDerived(derivedOf(authoritative), derived);
    // The derived half's index entries go with its slot: where another connection holds it, so are they.
    const entries = entriesOf(authoritative).filter(({ key }) => slot === 'ours' || isAuthoritativeEntry(key));
    await allSettled(entries.map(({ roleId, copy }) => fencedPut(indexEntrySlot(this.index, roleId, copy), copy, entriesAbsent ? null : undefined)));
  }

  /** Writes a derived half, version-fenced (see fencedPut). */
  putDerived(copy: Copy, known?: KnownVersion | null): Promise<'ours' | 'foreign'> {
    return fencedPut(derivedHalfSlot(this.store, copy), copy, known);
  }

  /**
   * Propagation within a change. If the other half's slot turns out to hold another connection (it took
   * the slot after this one was checked), this one is a refused create of an id used twice: it is ended,
   * and is not found.
   */
  private async propagateChanged(authoritative: StoredCopy | Copy, derived?: KnownVersion | null): Promise<void> {
    try {
      await this.propagate(authoritative, derived);
    } catch (error) {
      if (!(error instanceof DomainError && error.code === 'DuplicateRecord')) throw error;
      const current = await this.store.read(authoritative.half.record1id, authoritative.half.connectionid);
      if (current && !current.tombstone) await this.endDuplicateId(current, current.half.modifiedon).catch(() => undefined);
      throw connectionNotFound();
    }
  }

  /** The half a URL names and its connection's authoritative copy; undefined when there is no such half. */
  async locate(recordId: string, connectionId: string): Promise<{ target: StoredCopy; authoritative: StoredCopy } | undefined> {
    const target = await this.store.read(recordId, connectionId);
    if (!target) return undefined;
    if (isAuthoritative(target.half)) return { target, authoritative: target };
    const authoritative = await this.store.read(target.half.record2id, target.half.relatedconnectionid);
    // A derived copy without its authority (or whose slot there holds another connection) is a leftover
    // the repair job removes: not a connection.
    return authoritative && pairsWith(target.half, authoritative.half) ? { target, authoritative } : undefined;
  }

  /**
   * The id of the connection holding a guard, as seen from a record (the half in that record's
   * partition). A conflict is answered only once that connection is visible through both records: its
   * creator may have stopped before propagating it, and a 409 must never name a connection the caller
   * cannot then find.
   */
  private async holderSeenFrom(authoritative: ConnectionHalf, recordId: string): Promise<PairTaken | undefined> {
    const holder = await this.store.guardHolder(authoritative);
    if (!holder) return undefined;
    const held = await this.store.read(authoritative.record1id, holder.connectionid);
    // Released since (deleted, deactivated, roles changed): nothing to name; the caller decides again.
    if (!held || !claimsGuard(held) || guardRowKey(held.half) !== guardRowKey(authoritative)) return undefined;
    try {
      await this.propagate(held);
    } catch (error) {
      if (!(error instanceof DomainError && error.code === 'DuplicateRecord')) throw error;
      // The holder is a refused create of an id used twice, not a connection: it is ended, and the
      // caller decides again.
      await this.endDuplicateId(held, held.half.modifiedon).catch(() => undefined);
      return undefined;
    }
    return { kind: 'exists', id: recordId === authoritative.record1id ? held.half.connectionid : held.half.relatedconnectionid, holder: masterOf(held.half) };
  }

  /** The holder of the guard a new connection would take, unless it is that very connection (made meanwhile). */
  private async otherHolder(authoritative: ConnectionHalf, recordId: string): Promise<PairTaken | undefined> {
    const holder = await this.holderSeenFrom(authoritative, recordId);
    return holder?.id === authoritative.connectionid || holder?.id === authoritative.relatedconnectionid ? undefined : holder;
  }

  /**
   * Claims an id (both of a connection's ids share a claim key) for its authoritative slot, before the
   * create commits there, so no two connections anywhere hold one id:
   * - `insert`: a create's first claim (an insert; a claim already naming this slot is ours: a retry, a
   *   new incarnation of a deleted connection);
   * - `confirm`: before a commit conditional on a read of the slot, a claim naming this slot has its
   *   ETag moved, so a takeover that read it before fails;
   * - `ensure`: the repair job's check of a live connection (a read; written only when missing).
   * A claim naming another slot is refused while that slot's connection owns the id, live or deleted
   * (until its tombstone is purged), or, for CLAIM_GRACE_MS, while the create that claimed it may still
   * be running; otherwise it is taken over, after fencing that slot so that create can no longer commit.
   */
  async claimId(authoritative: ConnectionHalf, id: string, mode: 'insert' | 'confirm' | 'ensure', requestedId = id): Promise<void> {
    const slot = slotOf(authoritative);
    const now = authoritative.modifiedon;
    for (let round = 0; round < MAX_CLAIM_ROUNDS; round++) {
      try {
        const claim = round === 0 && mode === 'insert' ? undefined : await this.store.readClaim(id);
        if (!claim) {
          await this.store.writeClaim(id, slot, now);
          return;
        }
        const grace = this.options.claimGraceMs ?? CLAIM_GRACE_MS;
        const claimAge = Date.parse(now) - Date.parse(claim.claimedon);
        if (sameSlot(claim, slot)) {
          // An old claim of ours is renewed, so its grace covers this create too.
          if (mode === 'confirm' || (mode === 'insert' && claimAge >= grace / 2)) await this.store.writeClaim(id, slot, now, claim.etag);
          return;
        }
        const held = await this.store.read(claim.record1id, claim.connectionid);
        if (held && ownsIdOf(held, id)) throw duplicateId(requestedId);
        // A deleted connection keeps its id until its tombstones are purged: a retry of its delete, or a
        // late write of it, must not reach a connection that took the id meanwhile.
        if (held?.tombstone && !isFence(held) && ownsIdOf({ ...held, tombstone: false }, id)) throw duplicateId(requestedId);
        const unfinished = !held || isFence(held);
        if (unfinished && claimAge < grace) throw duplicateId(requestedId);
        await fenceSlot(this.store, claim, held, now);
        await this.store.writeClaim(id, slot, now, claim.etag);
        return;
      } catch (error) {
        // 409: claimed meanwhile (insert), or the fenced slot filled; 412/404: changed meanwhile. Look again.
        if (!isStorageStatus(error, 409) && !isStorageStatus(error, 412) && !isStorageStatus(error, 404)) throw error;
        if (round > 0) await this.pause(round);
      }
    }
    throw unavailable('The connection id is being claimed by many requests at once; retry the request.', 1);
  }

  /** What a create does before a commit: claims its id and reserves its roles, side by side. */
  private claimAndReserve(authoritative: ConnectionHalf, master: ConnectionHalf, mode: 'insert' | 'confirm'): Promise<void> {
    return allSettled([
      this.claimId(authoritative, authoritative.connectionid, mode, master.connectionid),
      this.usage.reserve(authoritative, undefined, fieldsOf(master)),
    ]);
  }

  /**
   * Creates a connection from its master half. Comes to `done` with `created: true` for a new connection
   * (or a retry of the very request that made it); to `exists` when another connection holds the pair; to
   * `judgeRepeat` when a connection with this id between the same records stands there, made by another
   * request: the use case judges whether it is what the caller asked for (then finishRepeat answers it)
   * or not (then `refusal`). Throws DuplicateRecord (the id belongs to something else).
   */
  async create(master: ConnectionHalf, fingerprint: string): Promise<CreateOutcome> {
    const authoritative = authoritativeOf(master);
    const stamp = this.stamp(fingerprint);
    try {
      await this.claimAndReserve(authoritative, master, 'insert');
    } catch (error) {
      // A retry of a create that was applied may meet its role being deleted meanwhile (the connection
      // then keeps the deletion from finishing): it is answered as the first attempt was.
      if (!(error instanceof DomainError && error.code === 'ConnectionRoleNotFound')) throw error;
      const existing = await this.store.read(authoritative.record1id, authoritative.connectionid);
      if (!existing || existing.tombstone || existing.half.record2id !== authoritative.record2id) throw error;
      if (latestRequest(existing.lastop) !== fingerprint) return { kind: 'judgeRepeat', existing: masterOf(existing.half), pending: { existing }, refusal: error };
      return this.finishRepeat({ existing });
    }
    let previous: StoredCopy | undefined;
    for (let round = 0; round < MAX_CREATE_ROUNDS; round++) {
      // Over a tombstone the commit is conditional on a read of the slot, so the claim and the roles are
      // confirmed after that read (an insert needs neither: the slot's absence cannot come back once fenced).
      if (previous) await this.claimAndReserve(authoritative, master, 'confirm');
      // A new incarnation of an id whose connection was deleted continues its versions, and is created
      // later than the old one even on a clock running behind, so late writes of the old one stay out.
      const createdon = previous && previous.half.createdon >= authoritative.createdon
        ? new Date(Date.parse(previous.half.createdon) + 1).toISOString() : authoritative.createdon;
      const first: Copy = {
        half: { ...authoritative, createdon, modifiedon: createdon > authoritative.modifiedon ? createdon : authoritative.modifiedon, versionnumber: (previous?.half.versionnumber ?? 0) + 1 },
        tombstone: false,
        lastop: withStamp(previous?.lastop ?? '', stamp),
        indexed: union(previous?.indexed ?? [], currentIndexKeys(authoritative)),
      };
      try {
        await commit(this.store, first, previous);
      } catch (error) {
        // 404/412: the tombstone it replaces was purged or re-used meanwhile; 409: the id or pair is taken.
        if (!isStorageStatus(error, 409) && !isStorageStatus(error, 412) && !isStorageStatus(error, 404)) throw error;
        const outcome = await this.afterFailedCreate(authoritative, master, fingerprint, stamp);
        if (outcome === 'retry') {
          await this.pause(round);
          previous = undefined;
          continue;
        }
        if ('tombstone' in outcome) {
          previous = outcome;
          continue;
        }
        return outcome;
      }
      // A first incarnation: its copies do not exist yet, so they are inserted without a read.
      await this.propagateCreated(first, previous === undefined);
      return { kind: 'done', master: masterOf(first.half), created: true };
    }
    throw unavailable('The connection could not be created because of concurrent changes; retry the request.', 1);
  }

  /** Answers a create the use case judged a repeat of an existing connection: that connection, propagated first. */
  async finishRepeat(pending: PendingRepeat): Promise<{ kind: 'done'; master: ConnectionHalf; created: false }> {
    await this.propagateCreated(pending.existing, false);
    return { kind: 'done', master: masterOf(pending.existing.half), created: false };
  }

  /**
   * Propagates a connection just created. When a slot of its copies turns out to hold another
   * connection (a connection id used twice, between other records), the create is undone (a tombstone
   * committed in its place) and refused.
   */
  private async propagateCreated(created: Copy, fresh: boolean): Promise<void> {
    try {
      await this.propagate(created, fresh ? null : undefined, fresh);
    } catch (error) {
      if (!(error instanceof DomainError && error.code === 'DuplicateRecord')) throw error;
      const current = await this.store.read(created.half.record1id, created.half.connectionid);
      if (current && !current.tombstone && landed(current.lastop, stampsIn(created.lastop).at(-1) ?? '')) {
        const undone: Copy = { ...current, half: { ...current.half, versionnumber: current.half.versionnumber + 1 }, tombstone: true, lastop: withStamp(current.lastop, this.stamp(UNDO)) };
        // Until it is undone the create stands applied, so a failure to undo is a 503: the retry undoes it
        // (or, if the caller never retries, the repair job ends it by the same rule).
        await commit(this.store, undone, current).catch((failure: unknown) => {
          if (isStorageStatus(failure, 412) || isStorageStatus(failure, 404)) {
            throw unavailable('The connection was changed while its create was being undone; retry the request.', 1);
          }
          throw failure;
        });
      }
      throw error;
    }
  }

  /** After a create's commit failed: what stands in its place decides (a repeat, a conflict, or a retry). */
  private async afterFailedCreate(
    authoritative: ConnectionHalf,
    master: ConnectionHalf,
    fingerprint: string,
    stamp: string,
  ): Promise<CreateOutcome | StoredCopy | 'retry'> {
    const existing = await this.store.read(authoritative.record1id, authoritative.connectionid);
    if (existing?.tombstone && (existing.half.record2id === authoritative.record2id || isFence(existing))) {
      const holder = await this.otherHolder(authoritative, master.record1id);
      if (holder !== undefined) return holder;
      return existing; // an earlier incarnation: created anew over its tombstone
    }
    if (existing) {
      // A tombstone of a connection between other records holds the id until the grace period is over.
      const sameConnection = existing.half.record2id === authoritative.record2id && !existing.tombstone;
      if (!sameConnection) throw duplicateId(master.connectionid);
      if (latestRequest(existing.lastop) === fingerprint || landed(existing.lastop, stamp)) {
        await this.propagateCreated(existing, false);
        // This very call made it (the SDK retried the commit after a lost answer): created. An
        // earlier request made it: a repeat, answered with the existing connection.
        return { kind: 'done', master: masterOf(existing.half), created: landed(existing.lastop, stamp) };
      }
      // Made by another request: only the use case can tell whether it is what this caller asked for.
      return { kind: 'judgeRepeat', existing: masterOf(existing.half), pending: { existing }, refusal: duplicateId(master.connectionid) };
    }
    const holder = await this.otherHolder(authoritative, master.record1id);
    if (holder !== undefined) return holder;
    return 'retry'; // what conflicted is gone again: try once more
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

  private async changeRound(recordId: string, connectionId: string, request: ChangeRequest, round: number): Promise<ChangeStep> {
    if (round >= MAX_CONTENDED_ROUNDS) throw unavailable('The connection is being changed by many requests at once; retry the request.', 1);
    const located = await this.locate(recordId, connectionId);
    if (!located) throw connectionNotFound();
    const { target, authoritative } = located;
    // The derived half, as the URL's read gave it or read now (propagation then needs no second read).
    const other = target === authoritative ? await this.store.read(authoritative.half.record2id, authoritative.half.relatedconnectionid) : target;
    if (other && !other.tombstone && !pairsWith(other.half, authoritative.half)) {
      // Its derived half's slot holds another connection's copy: this one was a create of an id used
      // twice that was refused (and not undone before its caller went away). It is not a connection.
      if (!authoritative.tombstone) await this.endDuplicateId(authoritative, authoritative.half.modifiedon).catch(() => undefined);
      throw connectionNotFound();
    }
    // Another connection's tombstone in the slot: unknown to this one (propagation decides).
    const derived = other && pairsWith(other.half, authoritative.half) ? knownVersion(other) : undefined;
    if (latestRequest(authoritative.lastop) === request.fingerprint) {
      await this.propagateChanged(authoritative, derived);
      return done(masterOf(authoritative.half), target, true, authoritative.tombstone);
    }
    if (authoritative.tombstone) {
      await this.propagateChanged(authoritative, derived);
      throw connectionNotFound();
    }
    return { kind: 'decide', current: masterOf(authoritative.half), pending: { recordId, connectionId, request, round, target, authoritative, derived } };
  }

  /** Commits the use case's decision on the state `pending` read (see beginChange). */
  async commitChange(pending: PendingChange, decision: Decision): Promise<ChangeStep> {
    const { recordId, connectionId, request, round, target, authoritative, derived } = pending;
    checkIfMatch(request.ifMatch, authoritative.half);
    if (decision.kind === 'keep') {
      await this.propagateChanged(authoritative, derived);
      return done(masterOf(authoritative.half), target, true, false);
    }
    const nextHalf = authoritativeOf(decision.half);
    const stamp = this.stamp(request.fingerprint);
    const next: Copy = {
      half: { ...nextHalf, versionnumber: authoritative.half.versionnumber + 1 },
      tombstone: decision.kind === 'delete',
      lastop: withStamp(authoritative.lastop, stamp),
      indexed: union(authoritative.indexed, currentIndexKeys(authoritative.half), currentIndexKeys(nextHalf)),
    };
    await this.usage.reserve(next.half, authoritative, fieldsOf(decision.half));
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
        const holder = await this.holderSeenFrom(next.half, recordId);
        if (holder !== undefined) return holder;
        // The guard was released meanwhile: decide again.
      }
      // Changed meanwhile (or only rewritten by the repair job): decided again on what is there now,
      // where If-Match is checked against the connection's version, not the storage ETag.
      await this.pause(round);
      return this.changeRound(recordId, connectionId, request, round + 1);
    }
    await this.propagateChanged(next, derived);
    return done(masterOf(next.half), target, false, next.tombstone);
  }

  /**
   * Deactivates a duplicate active connection that does not hold its guard (data older than this
   * protocol; the repair job's fixed rule picks which one): committed like any change, guard untouched.
   */
  async demoteDuplicate(loser: StoredCopy, now: string): Promise<void> {
    const next: Copy = {
      half: { ...loser.half, statecode: INACTIVE, statuscode: statusOfState[INACTIVE], modifiedon: now, versionnumber: loser.half.versionnumber + 1 },
      tombstone: false,
      lastop: withStamp(loser.lastop, this.stamp(REPAIR)),
      indexed: union(loser.indexed, currentIndexKeys(loser.half)),
    };
    await commit(this.store, next, loser, false);
    await this.propagate(next);
  }

  /**
   * Ends a connection whose other half's slot belongs to another connection (its id used twice): a
   * tombstone, committed like a delete, whose propagation leaves the other connection's copies alone.
   */
  async endDuplicateId(intruder: StoredCopy, now: string): Promise<void> {
    const next: Copy = {
      half: { ...intruder.half, modifiedon: now, versionnumber: intruder.half.versionnumber + 1 },
      tombstone: true,
      lastop: withStamp(intruder.lastop, this.stamp(REPAIR)),
      indexed: union(intruder.indexed, currentIndexKeys(intruder.half)),
    };
    await commit(this.store, next, intruder);
    await this.propagate(next);
  }
}

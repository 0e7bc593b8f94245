// Protocol: creating a connection: claim its id and reserve its roles, commit its first version, propagate; what stands in the way comes back as data.
import { type ConnectionHalf, masterOf } from '../domain/connection';
import { DomainError, unavailable } from '../domain/errors';
import type { ConnectionStore } from '../storage/connectionStore';
import { isStorageStatus } from '../storage/tablePort';
import { duplicateId, type IdClaims, type ProtocolOptions } from './claims';
import { commit } from './commit';
import { allSettled, jitteredPause } from './concurrency';
import type { Conflicts, PairTaken } from './conflicts';
import { authoritativeOf, type Copy, isFence, type StoredCopy } from './copies';
import { currentIndexKeys, mergedKeys } from './indexKeys';
import type { Propagation } from './propagation';
import { Seal, type Sealed } from './sealed';
import { fieldsOf, type RoleReservations } from './reservations';
import { landed, latestRequest, newStamp, stampsIn, UNDO, withStamp } from './stamps';

/**
 * What a create came to: done (created, or a retry of the very request), the pair taken, or a
 * connection with this id between the same records that only the use case can judge to be what the
 * caller asked for (a repeat, answered with it: finishRepeat) or not (`refusal` is the answer).
 */
export type CreateOutcome =
  | { kind: 'done'; master: ConnectionHalf; created: boolean }
  | PairTaken
  | { kind: 'judgeRepeat'; existing: ConnectionHalf; pending: PendingRepeat; refusal: DomainError };

/** An existing connection a create may be a repeat of. Sealed: the use case cannot read it. */
export type PendingRepeat = Sealed<'PendingRepeat'>;

interface RepeatCandidate {
  readonly existing: StoredCopy;
}

const repeatCandidates = new Seal<'PendingRepeat', RepeatCandidate>();

const MAX_CREATE_ROUNDS = 5;

export class Creation {
  constructor(
    private readonly store: ConnectionStore,
    private readonly claims: IdClaims,
    private readonly reservations: RoleReservations,
    private readonly propagation: Propagation,
    private readonly conflicts: Conflicts,
    private readonly options: ProtocolOptions,
  ) {}

  /** What a create does before a commit: claims its id and reserves its roles, side by side. */
  private claimAndReserve(
    authoritative: ConnectionHalf,
    master: ConnectionHalf,
    mode: 'insert' | 'confirm',
  ): Promise<void> {
    return allSettled([
      this.claims.claimId(authoritative, authoritative.connectionid, mode, master.connectionid),
      this.reservations.reserve(authoritative, undefined, fieldsOf(master)),
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
    const stamp = newStamp(this.options.random, fingerprint);
    try {
      await this.claimAndReserve(authoritative, master, 'insert');
    } catch (error) {
      // A retry of a create that was applied may meet its role being deleted meanwhile (the connection
      // then keeps the deletion from finishing): it is answered as the first attempt was.
      if (!(error instanceof DomainError && error.code === 'ConnectionRoleNotFound')) throw error;
      const existing = await this.store.read(authoritative.record1id, authoritative.connectionid);
      if (!existing || existing.tombstone || existing.half.record2id !== authoritative.record2id) throw error;
      if (latestRequest(existing.lastop) !== fingerprint)
        return {
          kind: 'judgeRepeat',
          existing: masterOf(existing.half),
          pending: repeatCandidates.seal({ existing }),
          refusal: error,
        };
      return this.answerRepeat(existing);
    }
    let previous: StoredCopy | undefined;
    for (let round = 0; round < MAX_CREATE_ROUNDS; round++) {
      // Over a tombstone the commit is conditional on a read of the slot, so the claim and the roles are
      // confirmed after that read (an insert needs neither: the slot's absence cannot come back once fenced).
      if (previous) await this.claimAndReserve(authoritative, master, 'confirm');
      // A new incarnation of an id whose connection was deleted continues its versions, and is created
      // later than the old one even on a clock running behind, so late writes of the old one stay out.
      const createdon =
        previous && previous.half.createdon >= authoritative.createdon
          ? new Date(Date.parse(previous.half.createdon) + 1).toISOString()
          : authoritative.createdon;
      const first: Copy = {
        half: {
          ...authoritative,
          createdon,
          modifiedon: createdon > authoritative.modifiedon ? createdon : authoritative.modifiedon,
          versionnumber: (previous?.half.versionnumber ?? 0) + 1,
        },
        tombstone: false,
        lastop: withStamp(previous?.lastop ?? '', stamp),
        indexed: mergedKeys(previous?.indexed ?? [], currentIndexKeys(authoritative)),
      };
      try {
        await commit(this.store, first, previous);
      } catch (error) {
        // 404/412: the tombstone it replaces was purged or re-used meanwhile; 409: the id or pair is taken.
        if (!isStorageStatus(error, 409) && !isStorageStatus(error, 412) && !isStorageStatus(error, 404)) throw error;
        const outcome = await this.afterFailedCreate(authoritative, master, fingerprint, stamp);
        if (outcome === 'retry') {
          await jitteredPause(this.options, round);
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
    return this.answerRepeat(repeatCandidates.open(pending).existing);
  }

  private async answerRepeat(existing: StoredCopy): Promise<{ kind: 'done'; master: ConnectionHalf; created: false }> {
    await this.propagateCreated(existing, false);
    return { kind: 'done', master: masterOf(existing.half), created: false };
  }

  /**
   * Propagates a connection just created. When a slot of its copies turns out to hold another
   * connection (a connection id used twice, between other records), the create is undone (a tombstone
   * committed in its place) and refused.
   */
  private async propagateCreated(created: Copy, fresh: boolean): Promise<void> {
    try {
      await this.propagation.propagate(created, fresh ? null : undefined, fresh);
    } catch (error) {
      if (!(error instanceof DomainError && error.code === 'DuplicateRecord')) throw error;
      const current = await this.store.read(created.half.record1id, created.half.connectionid);
      if (current && !current.tombstone && landed(current.lastop, stampsIn(created.lastop).at(-1) ?? '')) {
        const undone: Copy = {
          ...current,
          half: { ...current.half, versionnumber: current.half.versionnumber + 1 },
          tombstone: true,
          lastop: withStamp(current.lastop, newStamp(this.options.random, UNDO)),
        };
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
      const holder = await this.conflicts.otherHolder(authoritative, master.record1id);
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
      return {
        kind: 'judgeRepeat',
        existing: masterOf(existing.half),
        pending: repeatCandidates.seal({ existing }),
        refusal: duplicateId(master.connectionid),
      };
    }
    const holder = await this.conflicts.otherHolder(authoritative, master.record1id);
    if (holder !== undefined) return holder;
    return 'retry'; // what conflicted is gone again: try once more
  }
}

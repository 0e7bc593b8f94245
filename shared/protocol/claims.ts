// Protocol: claims of connection ids (one connection per id, across all records) and fences of authoritative slots.
import { type ConnectionHalf, INACTIVE, statusOfState } from '../domain/connection';
import { conflict, type DomainError, unavailable } from '../domain/errors';
import { idKeyOf, reciprocalIdOf } from '../domain/ids';
import type { ClaimedSlot, ConnectionStore } from '../storage/connectionStore';
import { isStorageStatus } from '../storage/tablePort';
import { jitteredPause, type Waiting } from './concurrency';
import { type Copy, isFence, type StoredCopy } from './copies';

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

/** The id belongs to another connection (or another create is claiming it). */
export const duplicateId = (connectionId: string): DomainError =>
  conflict('DuplicateRecord', `A different connection with id ${connectionId} already exists.`, {
    connectionid: connectionId,
  });

/** The authoritative slot of a connection (record 1, connection id), and what a fence there needs. */
export const slotOf = (authoritative: ConnectionHalf): ClaimedSlot => ({
  record1id: authoritative.record1id,
  connectionid: authoritative.connectionid,
  record2id: authoritative.record2id,
  record1objecttypecode: authoritative.record1objecttypecode,
  record2objecttypecode: authoritative.record2objecttypecode,
});

export const sameSlot = (
  a: Pick<ClaimedSlot, 'record1id' | 'connectionid'>,
  b: Pick<ClaimedSlot, 'record1id' | 'connectionid'>,
): boolean => a.record1id === b.record1id && a.connectionid === b.connectionid;

/** Whether a live copy owns the claim key of `connectionId` (either of its ids has that key). */
export const ownsIdOf = (copy: Copy, connectionId: string): boolean =>
  !copy.tombstone &&
  (idKeyOf(copy.half.connectionid) === idKeyOf(connectionId) ||
    idKeyOf(copy.half.relatedconnectionid) === idKeyOf(connectionId));

/**
 * The tombstone a fence leaves in an empty slot: it stands for a connection that never committed there,
 * so whatever create was decided on the empty slot fails, and one that meets it decides again.
 */
function fenceTombstone(slot: ClaimedSlot, now: string): Copy {
  return {
    half: {
      connectionid: slot.connectionid,
      relatedconnectionid: reciprocalIdOf(slot.connectionid),
      ismaster: true,
      record1id: slot.record1id,
      record1objecttypecode: slot.record1objecttypecode,
      record1roleid: null,
      record1name: null,
      record2id: slot.record2id,
      record2objecttypecode: slot.record2objecttypecode,
      record2roleid: null,
      record2name: null,
      name: null,
      description: null,
      effectivestart: null,
      effectiveend: null,
      statecode: INACTIVE,
      statuscode: statusOfState[INACTIVE],
      ownerid: '',
      createdon: now,
      createdby: '',
      modifiedon: now,
      modifiedby: '',
      versionnumber: 0,
      shares: [],
    },
    tombstone: true,
    lastop: '',
    indexed: [],
  };
}

/**
 * Fences a slot: after this, no commit decided on what the slot held before can land (commits are
 * conditional on the slot's ETag, or on its absence). A copy is rewritten as it is; an empty slot gets
 * a tombstone. Throws 409/412/404 when the slot changed since `held` was read.
 */
export async function fenceSlot(
  store: ConnectionStore,
  slot: ClaimedSlot,
  held: StoredCopy | undefined,
  now: string,
): Promise<void> {
  if (!held) await store.insert(fenceTombstone(slot, now));
  // A tombstone fenced is kept for a whole grace period from now: purged earlier, its slot would be
  // empty again while the write it fenced out may still be running.
  else if (held.tombstone)
    await store.rewrite(
      { ...held, half: { ...held.half, modifiedon: now > held.half.modifiedon ? now : held.half.modifiedon } },
      held.etag,
    );
  else await store.rewrite(held, held.etag);
}

/** Id claims: the rows that make a connection id unique across all records (see the claims' layout in storage). */
export class IdClaims {
  constructor(
    private readonly store: ConnectionStore,
    private readonly options: ProtocolOptions,
  ) {}

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
  async claimId(
    authoritative: ConnectionHalf,
    id: string,
    mode: 'insert' | 'confirm' | 'ensure',
    requestedId = id,
  ): Promise<void> {
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
          if (mode === 'confirm' || (mode === 'insert' && claimAge >= grace / 2))
            await this.store.writeClaim(id, slot, now, claim.etag);
          return;
        }
        const held = await this.store.read(claim.record1id, claim.connectionid);
        if (held && ownsIdOf(held, id)) throw duplicateId(requestedId);
        // A deleted connection keeps its id until its tombstones are purged: a retry of its delete, or a
        // late write of it, must not reach a connection that took the id meanwhile.
        if (held?.tombstone && !isFence(held) && ownsIdOf({ ...held, tombstone: false }, id))
          throw duplicateId(requestedId);
        const unfinished = !held || isFence(held);
        if (unfinished && claimAge < grace) throw duplicateId(requestedId);
        await fenceSlot(this.store, claim, held, now);
        await this.store.writeClaim(id, slot, now, claim.etag);
        return;
      } catch (error) {
        // 409: claimed meanwhile (insert), or the fenced slot filled; 412/404: changed meanwhile. Look again.
        if (!isStorageStatus(error, 409) && !isStorageStatus(error, 412) && !isStorageStatus(error, 404)) throw error;
        if (round > 0) await jitteredPause(this.options, round);
      }
    }
    throw unavailable('The connection id is being claimed by many requests at once; retry the request.', 1);
  }
}

// Protocol: claims of connection ids (one connection per id, across all records) and fences of authoritative slots.
import { type ConnectionHalf, INACTIVE, statusOfState } from '../domain/connection';
import { idKeyOf, reciprocalIdOf } from '../domain/ids';
import type { ClaimedSlot, ConnectionStore } from '../storage/connectionStore';
import type { Copy, StoredCopy } from './copies';

/** The authoritative slot of a connection (record 1, connection id), and what a fence there needs. */
export const slotOf = (authoritative: ConnectionHalf): ClaimedSlot => ({
  record1id: authoritative.record1id,
  connectionid: authoritative.connectionid,
  record2id: authoritative.record2id,
  record1objecttypecode: authoritative.record1objecttypecode,
  record2objecttypecode: authoritative.record2objecttypecode,
});

export const sameSlot = (a: Pick<ClaimedSlot, 'record1id' | 'connectionid'>, b: Pick<ClaimedSlot, 'record1id' | 'connectionid'>): boolean =>
  a.record1id === b.record1id && a.connectionid === b.connectionid;

/** Whether a live copy owns the claim key of `connectionId` (either of its ids has that key). */
export const ownsIdOf = (copy: Copy, connectionId: string): boolean =>
  !copy.tombstone && (idKeyOf(copy.half.connectionid) === idKeyOf(connectionId) || idKeyOf(copy.half.relatedconnectionid) === idKeyOf(connectionId));

/**
 * The tombstone a fence leaves in an empty slot: it stands for a connection that never committed there,
 * so whatever create was decided on the empty slot fails, and one that meets it decides again.
 */
function fenceTombstone(slot: ClaimedSlot, now: string): Copy {
  return {
    half: {
      connectionid: slot.connectionid, relatedconnectionid: reciprocalIdOf(slot.connectionid), ismaster: true,
      record1id: slot.record1id, record1objecttypecode: slot.record1objecttypecode, record1roleid: null, record1name: null,
      record2id: slot.record2id, record2objecttypecode: slot.record2objecttypecode, record2roleid: null, record2name: null,
      name: null, description: null, effectivestart: null, effectiveend: null,
      statecode: INACTIVE, statuscode: statusOfState[INACTIVE], ownerid: '', createdon: now, createdby: '', modifiedon: now, modifiedby: '',
      versionnumber: 0, shares: [],
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
export async function fenceSlot(store: ConnectionStore, slot: ClaimedSlot, held: StoredCopy | undefined, now: string): Promise<void> {
  if (!held) await store.insert(fenceTombstone(slot, now));
  // A tombstone fenced is kept for a whole grace period from now: purged earlier, its slot would be
  // empty again while the write it fenced out may still be running.
  else if (held.tombstone) await store.rewrite({ ...held, half: { ...held.half, modifiedon: now > held.half.modifiedon ? now : held.half.modifiedon } }, held.etag);
  else await store.rewrite(held, held.etag);
}

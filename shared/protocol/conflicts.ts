// Protocol: naming the connection that holds a pair (the guard's holder) when a commit meets it; the use case decides whether the caller may see it.
import { type ConnectionHalf, masterOf } from '../domain/connection';
import { conflict, DomainError } from '../domain/errors';
import { type ConnectionStore, guardRowKey } from '../storage/connectionStore';
import { claimsGuard } from './copies';
import type { Propagation } from './propagation';
import type { RepairOperations } from './repairOperations';

/** The pair is taken by another connection: `holder` (its master half) for the use case to name, or not, by access. */
export interface PairTaken {
  kind: 'exists';
  holder: ConnectionHalf;
  /** The holder's id as seen from the record the request came through. */
  id: string;
}

/**
 * The pair is taken. The existing connection is named only to a caller who may read it (the use case
 * judges `visible`): anyone else learns that the pair is taken (the uniqueness rule cannot hide that),
 * and nothing about the connection itself.
 */
export const connectionExists = (holder: { id: string; visible: boolean }): DomainError =>
  holder.visible
    ? conflict(
        'ConnectionExists',
        `An active connection between these records with these roles already exists: ${holder.id}.`,
        { existingconnectionid: holder.id },
      )
    : conflict('ConnectionExists', 'An active connection between these records with these roles already exists.');

export class Conflicts {
  constructor(
    private readonly store: ConnectionStore,
    private readonly propagation: Propagation,
    private readonly repairs: RepairOperations,
  ) {}

  /**
   * The connection holding a guard, as seen from a record (the half in that record's partition). A
   * conflict is answered only once that connection is visible through both records: its creator may have
   * stopped before propagating it, and a 409 must never name a connection the caller cannot then find.
   */
  async holderSeenFrom(authoritative: ConnectionHalf, recordId: string): Promise<PairTaken | undefined> {
    const holder = await this.store.guardHolder(authoritative);
    if (!holder) return undefined;
    const held = await this.store.read(authoritative.record1id, holder.connectionid);
    // Released since (deleted, deactivated, roles changed): nothing to name; the caller decides again.
    if (!held || !claimsGuard(held) || guardRowKey(held.half) !== guardRowKey(authoritative)) return undefined;
    try {
      await this.propagation.propagate(held);
    } catch (error) {
      if (!(error instanceof DomainError && error.code === 'DuplicateRecord')) throw error;
      // The holder is a refused create of an id used twice, not a connection: it is ended, and the
      // caller decides again.
      await this.repairs.endDuplicateId(held, held.half.modifiedon).catch(() => undefined);
      return undefined;
    }
    return {
      kind: 'exists',
      id: recordId === authoritative.record1id ? held.half.connectionid : held.half.relatedconnectionid,
      holder: masterOf(held.half),
    };
  }

  /** The holder of the guard a new connection would take, unless it is that very connection (made meanwhile). */
  async otherHolder(authoritative: ConnectionHalf, recordId: string): Promise<PairTaken | undefined> {
    const holder = await this.holderSeenFrom(authoritative, recordId);
    return holder?.id === authoritative.connectionid || holder?.id === authoritative.relatedconnectionid
      ? undefined
      : holder;
  }
}

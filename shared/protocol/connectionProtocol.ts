// Protocol: the facade the use cases and the repair job reach the write protocol through; each job lives in its own module.
import type { ConnectionHalf } from '../domain/connection';
import type { ConnectionStore } from '../storage/connectionStore';
import type { RoleIndexStore } from '../storage/roleIndexStore';
import { IdClaims, type ProtocolOptions } from './claims';
import { type ChangeRequest, Changes, type ChangeStep, type Decision, type PendingChange } from './change';
import { Conflicts } from './conflicts';
import type { Copy, KnownVersion, StoredCopy } from './copies';
import { type CreateOutcome, Creation, type PendingRepeat } from './create';
import { Propagation } from './propagation';
import { RepairOperations } from './repairOperations';
import type { RoleReservations } from './reservations';

/**
 * The write protocol of a connection, as the use cases and the repair job reach it. The protocol itself
 * (one authority, commit then propagate, tombstones, helping, recognised retries, claims, reservations)
 * is stated once, in docs/protocol.md, with its glossary and invariants.
 *
 * Prefetch, decide, write: the protocol never calls back into a use case. A create's conflicts and
 * possible repeats come back as data (CreateOutcome) for the use case to judge; a change hands the
 * current master half to the use case (beginChange), which decides on it (loading the role catalog
 * first when it needs it) and hands its Decision back (commitChange).
 *
 * Where each job lives: copies.ts (the copy model, the fence rule), commit.ts (a commit and its audit
 * record), claims.ts (id claims, fences), reservations.ts (roles reserved before a commit),
 * propagation.ts, conflicts.ts (the pair's holder), create.ts, change.ts, repairOperations.ts, stamps.ts.
 */
export class ConnectionProtocol {
  private readonly claims: IdClaims;
  private readonly propagation: Propagation;
  private readonly repairs: RepairOperations;
  private readonly creation: Creation;
  private readonly changes: Changes;

  // The stores are the protocol's collaborators, not its interface: the use cases are given the stores
  // they read by the composition root, and the repair walker works through its RepairPort.
  constructor(store: ConnectionStore, index: RoleIndexStore, usage: RoleReservations, options: ProtocolOptions) {
    this.claims = new IdClaims(store, options);
    this.propagation = new Propagation(store, index);
    this.repairs = new RepairOperations(store, this.propagation, () => options.random());
    const conflicts = new Conflicts(store, this.propagation, this.repairs);
    this.creation = new Creation(store, this.claims, usage, this.propagation, conflicts, options);
    this.changes = new Changes(store, usage, this.propagation, conflicts, this.repairs, options);
  }

  /** See Creation.create: claims, reserves, commits and propagates a new connection; conflicts and repeats come back as data. */
  create(master: ConnectionHalf, fingerprint: string): Promise<CreateOutcome> {
    return this.creation.create(master, fingerprint);
  }

  /** Answers a create the use case judged a repeat of the existing connection. */
  finishRepeat(pending: PendingRepeat): Promise<{ kind: 'done'; master: ConnectionHalf; created: false }> {
    return this.creation.finishRepeat(pending);
  }

  /** See Changes.beginChange: reads the connection and hands its current state to the use case to decide on. */
  beginChange(recordId: string, connectionId: string, request: ChangeRequest): Promise<ChangeStep> {
    return this.changes.beginChange(recordId, connectionId, request);
  }

  /** Commits the use case's decision on a pending change, or hands it back to decide again after a lost race. */
  commitChange(pending: PendingChange, decision: Decision): Promise<ChangeStep> {
    return this.changes.commitChange(pending, decision);
  }

  /** The half a URL names and its connection's authoritative copy; undefined when there is no such half. */
  locate(
    recordId: string,
    connectionId: string,
  ): Promise<{ target: StoredCopy; authoritative: StoredCopy } | undefined> {
    return this.changes.locate(recordId, connectionId);
  }

  // Repair primitives (the repair walker's).

  propagate(authoritative: Copy, derived?: KnownVersion | null): Promise<void> {
    return this.propagation.propagate(authoritative, derived);
  }

  putDerived(copy: Copy, known?: KnownVersion | null): Promise<'ours' | 'foreign'> {
    return this.propagation.putDerived(copy, known);
  }

  claimId(
    authoritative: ConnectionHalf,
    id: string,
    mode: 'insert' | 'confirm' | 'ensure',
    requestedId = id,
  ): Promise<void> {
    return this.claims.claimId(authoritative, id, mode, requestedId);
  }

  demoteDuplicate(loser: StoredCopy, now: string): Promise<void> {
    return this.repairs.demoteDuplicate(loser, now);
  }

  endDuplicateId(intruder: StoredCopy, now: string): Promise<void> {
    return this.repairs.endDuplicateId(intruder, now);
  }
}

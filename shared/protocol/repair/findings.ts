// Protocol, repair: what the repair walk finds at one row, each kind named by the invariant it breaks.
import type { InvariantNumber } from '../invariants';

export type ViolationKind =
  | 'missing-derived-half'
  | 'lagging-derived-half'
  | 'derived-copy-mismatch'
  | 'orphan-derived-half'
  | 'missing-guard'
  | 'orphan-guard'
  | 'duplicate-active'
  | 'missing-index'
  | 'stale-index'
  | 'orphan-index'
  | 'duplicate-id'
  | 'unclaimed-id';

/**
 * The invariant (shared/protocol/invariants.ts, stated in docs/protocol.md) each finding breaks. A
 * finding is named by the statement the row breaks, not by the invariant the broken row exists to
 * protect:
 * - I7 copies-converge lists derived halves, index entries and guards by name (every live half has its
 *   derived half at the same version, mirroring it; every half with a role has its index entry, equal to
 *   it, and every entry belongs to a live half with that role; every active connection holds its guard
 *   and every guard names the connection it guards). So a missing, lagging or different derived copy, an
 *   index entry no live half lists, and a guard missing or naming another connection break I7, even
 *   though the guard is what keeps I1. A derived half without its authority is a live half without its
 *   counterpart: I7 too (it is an unfinished delete of older data, but the walk cannot tell it was
 *   deleted, so it does not claim I4).
 * - I1 one-active-per-pair: two active connections with the same records and roles.
 * - I9 one-connection-per-id: an id live in two connections. An id its connection does not claim breaks
 *   no statement but I9's, which the claims keep (I7 does not list claims): nothing stops another create
 *   from taking the id while it is unclaimed.
 * The walk finds no breach of the others: I2-I6 and I8 are about answers (the simulation and the load
 * tests check them), and I10 about the role catalog, which it does not read (settling reservations and
 * stale role marks is bookkeeping, reported as no finding).
 */
export const FINDING_INVARIANT: Record<ViolationKind, InvariantNumber> = {
  'missing-derived-half': 7,
  'lagging-derived-half': 7,
  'derived-copy-mismatch': 7,
  'orphan-derived-half': 7,
  'missing-guard': 7,
  'orphan-guard': 7,
  'duplicate-active': 1,
  'missing-index': 7,
  'stale-index': 7,
  'orphan-index': 7,
  'duplicate-id': 9,
  'unclaimed-id': 9,
};

export interface Violation {
  kind: ViolationKind;
  table: 'connections' | 'roleIndex';
  partitionKey: string;
  rowKey: string;
  detail: string;
}

/** Where a check hands a finding to its walk. */
export type Report = (violation: Violation) => void;

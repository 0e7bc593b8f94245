// Protocol, repair: what the repair walk finds (a violation of what the write protocol keeps, at one row).

export type ViolationKind =
  | 'missing-twin'
  | 'lagging-twin'
  | 'twin-mismatch'
  | 'orphan-twin'
  | 'missing-guard'
  | 'orphan-guard'
  | 'duplicate-active'
  | 'missing-index'
  | 'stale-index'
  | 'orphan-index'
  | 'duplicate-id'
  | 'unclaimed-id';

export interface Violation {
  kind: ViolationKind;
  table: 'connections' | 'roleIndex';
  partitionKey: string;
  rowKey: string;
  detail: string;
}

/** Where a check hands a finding to its walk. */
export type Report = (violation: Violation) => void;

// Protocol, repair: one pass of the repair walk: what it is asked to do, what it tallies, what each check is given.
import type { TablePort } from '../../storage/tablePort';
import type { Report, Violation } from './findings';
import type { RepairPort } from './repairPort';

export interface Checkpoint {
  phase: 'halves' | 'index';
  /** The partition of the last row fully walked in this phase. */
  partition?: string;
  /** The last row fully walked (in `partition`). */
  row?: string;
}

export interface WalkOptions {
  repair: boolean;
  /**
   * Tombstones younger than this are kept: a request still running may yet try to write an older
   * version of their connection, which the tombstone fences out. It must exceed the longest a request
   * can live (the Functions timeout).
   */
  graceMs: number;
  from?: Checkpoint;
  /** Stop after the first page that ends after this time (ms since epoch). */
  deadline?: number;
  /** Store the checkpoint after every page, so a walk that dies loses at most a page of progress. */
  persist?: boolean;
  /**
   * Role reservations older than this are settled (default graceMs). Safety does not depend on it (a
   * settled reservation's slot is fenced); younger ones are left to the writes that made them.
   */
  settleAfterMs?: number;
}

export interface WalkResult {
  violations: Violation[];
  repaired: number;
  scanned: number;
  /** Tombstones (and their copies) removed. */
  purged: number;
  /** Tombstones younger than the grace period, left in place. */
  skippedRecent: number;
  /** Rows that could not be checked (storage failed); the next pass looks at them again. */
  failed: number;
  /** Where to resume; undefined when the walk reached the end of both phases. */
  next?: Checkpoint;
}

export interface Tables {
  connections: TablePort;
  roleIndex: TablePort;
}

/** What every row check and purge of one pass works with: they report into it and count in its result. */
export interface Pass {
  /** The rows it scans, and the one write that is no repair primitive: garbage overwritten as read. */
  readonly tables: Tables;
  readonly port: RepairPort;
  readonly options: WalkOptions;
  readonly result: WalkResult;
  readonly report: Report;
  /** The walk's clock, in ms since epoch. */
  readonly clock: () => number;
}

import { allSettled, forEachLimited } from '../concurrency';
import { sameContent } from '../../domain/connection';
import { DomainError } from '../../domain/errors';
import { idKeyOf } from '../../domain/ids';
import type { ConnectionProtocol } from '../connectionProtocol';
import { derivedOf, entriesOf } from '../propagation';
import { currentIndexKeys } from '../indexKeys';
import { sameSlot } from '../claims';
import { claimsGuard, type Copy, isAuthoritative, isLater, knownVersion, pairsWith, type StoredCopy } from '../copies';
import { fromStored, guardRowKey, halfRowKey, isGuardRowKey, isHalfRowKey, toEntity } from '../../storage/connectionStore';
import { indexRowKey, isReservationRowKey, reservationOf } from '../../storage/roleIndexStore';
import { ANY_ETAG, isStorageStatus, type Stored, type TableEntity, type TablePort, type TableQuery } from '../../storage/tablePort';

/**
 * Anti-entropy for the tables: checks (and, asked to, restores) what the write protocol keeps, by
 * walking both tables a page at a time. It holds one page in memory, checkpoints after every page (so a
 * huge partition cannot stall it), and isolates failures: a row that cannot be checked is counted and
 * logged, and the walk goes on.
 *
 * It never writes from what it listed: every repair goes through the protocol's own version-fenced
 * propagation of the authoritative copy as it is now, so a walk racing live requests cannot take a
 * copy back to an older version. What it checks, for every connection:
 * - the other half and every index entry are at the authoritative copy's version and agree with it;
 * - a live, active connection holds its guard, and every guard names the live, active connection it
 *   guards; no two active connections share records and roles (a duplicate, which the protocol cannot
 *   produce but older data may hold, is resolved by a fixed rule: the earliest `createdon`, then the
 *   lowest id, stays active, the others are deactivated);
 * - a derived copy without an authoritative copy (which the protocol cannot produce either) is removed;
 * - tombstones older than the grace period are purged, derived copies first, the authoritative last.
 */
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

const PAGE_SIZE = 1000;
const ROW_CONCURRENCY = 16;
// The checkpoint lives in the connections table under a partition no record id can take ('~' sorts
// after every GUID), which also ends the walk's range.
const CHECKPOINT_PARTITION = '~repair';
const CHECKPOINT_ROW = 'checkpoint';

type Report = (violation: Violation) => void;

export class ConsistencyWalker {
  constructor(
    private readonly tables: Tables,
    private readonly protocol: ConnectionProtocol,
    private readonly clock: () => number = Date.now,
    private readonly log: (message: string) => void = (message) => console.warn(message),
  ) {}

  async walk(options: WalkOptions): Promise<WalkResult> {
    const result: WalkResult = { violations: [], repaired: 0, scanned: 0, purged: 0, skippedRecent: 0, failed: 0 };
    // A role deletion that stopped after marking its role would keep the role from new connections for
    // good: once no such request can be running, the mark goes (one query of the roles partition).
    if (options.repair && options.from === undefined) {
      result.repaired += await this.protocol.usage.clearStaleMarks(this.clock(), options.graceMs).catch((error: unknown) => {
        result.failed++;
        this.log(`repair: role marks not checked: ${error instanceof Error ? error.message : String(error)}`);
        return 0;
      });
    }
    let checkpoint: Checkpoint | undefined = options.from ?? { phase: 'halves' };
    while (checkpoint) {
      const stoppedAt = await this.walkPhase(checkpoint, options, result);
      if (stoppedAt) return { ...result, next: stoppedAt };
      checkpoint = checkpoint.phase === 'halves' ? { phase: 'index' } : undefined;
    }
    return result;
  }

  /** Reads the stored checkpoint of the repair job (undefined: start a new pass). */
  async loadCheckpoint(): Promise<Checkpoint | undefined> {
    const stored = await this.tables.connections.get(CHECKPOINT_PARTITION, CHECKPOINT_ROW);
    if (!stored) return undefined;
    const { phase, partition, row } = stored.entity;
    return {
      phase: phase === 'index' ? 'index' : 'halves',
      ...(typeof partition === 'string' && { partition }),
      ...(typeof row === 'string' && { row }),
    };
  }

  async saveCheckpoint(checkpoint: Checkpoint | undefined): Promise<void> {
    const key = { partitionKey: CHECKPOINT_PARTITION, rowKey: CHECKPOINT_ROW };
    if (!checkpoint) {
      await this.tables.connections.write({ op: 'delete', ...key, etag: ANY_ETAG }).catch((error: unknown) => {
        if (!isStorageStatus(error, 404)) throw error;
      });
      return;
    }
    await this.tables.connections.write({ op: 'upsert', entity: { ...key, ...checkpoint } });
  }

  /** One phase from a checkpoint: returns where it stopped at the deadline, undefined at its end. */
  private async walkPhase(from: Checkpoint, options: WalkOptions, result: WalkResult): Promise<Checkpoint | undefined> {
    const table = from.phase === 'halves' ? this.tables.connections : this.tables.roleIndex;
    const upper = from.phase === 'halves' ? { lt: CHECKPOINT_PARTITION } : {};
    const queries: TableQuery[] = [];
    // Resuming inside a partition: the rest of it first, then the partitions after it.
    if (from.partition !== undefined && from.row !== undefined) queries.push({ partitionKey: from.partition, rowKey: { gt: from.row } });
    queries.push({ partitionKey: from.partition === undefined ? upper : { gt: from.partition, ...upper } });
    const report: Report = (violation) => result.violations.push(violation);
    for (const query of queries) {
      let continuation: string | undefined;
      do {
        const page = await table.query(query, { limit: PAGE_SIZE, ...(continuation !== undefined && { continuation }) });
        continuation = page.continuation;
        await forEachLimited(page.items, ROW_CONCURRENCY, async (stored) => {
          result.scanned++;
          try {
            if (from.phase === 'halves') await this.checkConnectionRow(stored, options, result, report);
            else await this.checkIndexEntry(stored, options, result, report);
          } catch (error) {
            result.failed++;
            this.log(`repair: ${stored.entity.partitionKey}/${stored.entity.rowKey} not checked: ${error instanceof Error ? error.message : String(error)}`);
          }
        });
        const last = page.items.at(-1)?.entity;
        if (!last) continue;
        const position: Checkpoint = { phase: from.phase, partition: last.partitionKey, row: last.rowKey };
        if (options.persist) await this.saveCheckpoint(position);
        if (options.deadline !== undefined && this.clock() > options.deadline) return position;
      } while (continuation !== undefined);
    }
    return undefined;
  }

  private expired(copy: Copy, options: WalkOptions): boolean {
    return this.clock() - Date.parse(copy.half.modifiedon) >= options.graceMs;
  }

  private async checkConnectionRow(stored: Stored, options: WalkOptions, result: WalkResult, report: Report): Promise<void> {
    const { rowKey } = stored.entity;
    if (isGuardRowKey(rowKey)) return this.checkGuard(stored, options, result, report);
    if (!isHalfRowKey(rowKey)) return;
    const copy = fromStored(stored);
    if (isAuthoritative(copy.half)) return this.checkAuthoritative(copy, options, result, report);
    return this.checkDerived(copy, options, result, report);
  }

  /**
   * A live connection's ids are claimed by its slot. Connections created before claims existed get
   * theirs here (two, when their other half's id is of the older, name-based kind); a claim held by
   * another live connection is an id used twice by such older data, reported for a person to resolve.
   */
  private async checkClaims(authoritative: StoredCopy, options: WalkOptions, report: Report): Promise<void> {
    const { half } = authoritative;
    const ids = idKeyOf(half.connectionid) === idKeyOf(half.relatedconnectionid) ? [half.connectionid] : [half.connectionid, half.relatedconnectionid];
    for (const id of ids) {
      const claim = await this.protocol.store.readClaim(id);
      if (claim && sameSlot(claim, half)) continue;
      if (!options.repair) {
        report({ kind: 'unclaimed-id', table: 'connections', partitionKey: half.record1id, rowKey: authoritative.key, detail: `id ${id} is ${claim ? `claimed by ${claim.record1id}/${claim.connectionid}` : 'not claimed'}` });
        continue;
      }
      // Acted on only as the connection is now, not as listed (it may have been deleted since).
      const fresh = await this.protocol.store.read(half.record1id, half.connectionid);
      if (!fresh || fresh.tombstone || fresh.etag !== authoritative.etag) return;
      const now = { ...half, modifiedon: new Date(this.clock()).toISOString() };
      try {
        await this.protocol.claimId(now, id, 'ensure');
      } catch (error) {
        if (!(error instanceof DomainError && error.code === 'DuplicateRecord')) throw error;
        report({ kind: 'duplicate-id', table: 'connections', partitionKey: half.record1id, rowKey: authoritative.key, detail: `id ${id} is also live in another connection` });
      }
    }
  }

  /** The other half and the index entries against the authoritative copy; its guard; tombstone purge. */
  private async checkAuthoritative(authoritative: StoredCopy, options: WalkOptions, result: WalkResult, report: Report): Promise<void> {
    const { store, index } = this.protocol;
    const expired = authoritative.tombstone && this.expired(authoritative, options);
    if (expired && options.repair) {
      await this.purge(authoritative);
      result.purged++;
      return;
    }
    if (authoritative.tombstone && !expired) result.skippedRecent++;
    const found: Violation[] = [];
    // A copy at the same version with other content, or ahead of its authority, is garbage (of an earlier
    // incarnation of the id, or of a write older than this protocol): the fence would keep it, so it is
    // rewritten outright, if still as read, once the authority read after it confirms the listing.
    const rewrite: { table: TablePort; entity: TableEntity; etag: string }[] = [];
    let foreignSlot = false;
    const versionOf = (copy: Copy) => ({ createdon: copy.half.createdon, version: copy.half.versionnumber });
    const compare = (copy: StoredCopy | undefined, expected: Copy, kinds: { missing: ViolationKind; lagging: ViolationKind }, at: { table: 'connections' | 'roleIndex'; partitionKey: string; rowKey: string }) => {
      if (!copy) {
        if (!expected.tombstone) found.push({ ...at, kind: kinds.missing, detail: `copy of ${authoritative.half.connectionid} v${expected.half.versionnumber} missing` });
      } else if (copy.half.record2id !== expected.half.record2id || copy.half.relatedconnectionid !== expected.half.relatedconnectionid) {
        // The slot holds another connection's copy: this id is used twice (only data older than this
        // protocol, or a create refused and not undone, can leave that).
        if (!expected.tombstone) foreignSlot = true;
      } else if (isLater(versionOf(expected), versionOf(copy))) {
        found.push({ ...at, kind: kinds.lagging, detail: `v${copy.half.versionnumber} behind v${expected.half.versionnumber}` });
      } else if (isLater(versionOf(copy), versionOf(expected)) || copy.tombstone !== expected.tombstone || !sameContent(copy.half, expected.half)) {
        found.push({ ...at, kind: 'twin-mismatch', detail: `v${copy.half.versionnumber} differs from its authoritative copy v${expected.half.versionnumber}` });
        const table = at.table === 'connections' ? this.tables.connections : this.tables.roleIndex;
        rewrite.push({ table, entity: toEntity(expected, at.partitionKey, at.rowKey), etag: copy.etag });
      }
    };
    const wanted = derivedOf(authoritative);
    const derived = await store.read(wanted.half.record1id, wanted.half.connectionid);
    compare(derived, wanted, { missing: 'missing-twin', lagging: 'lagging-twin' }, { table: 'connections', partitionKey: wanted.half.record1id, rowKey: halfRowKey(wanted.half.connectionid) });
    if (foreignSlot && derived) return this.resolveForeignSlot(authoritative, derived, options, result, report);
    // Entries under roles the connection no longer plays: tombstones, kept while the grace period runs.
    const formerEntries: { key: string; entry: StoredCopy | undefined }[] = [];
    const current = new Set<string>(currentIndexKeys(authoritative.half));
    await allSettled(entriesOf(authoritative).map(async ({ key, roleId, copy }) => {
      const entry = await index.read(roleId, copy.half);
      compare(entry, copy, { missing: 'missing-index', lagging: 'stale-index' }, { table: 'roleIndex', partitionKey: roleId, rowKey: indexRowKey(copy.half) });
      if (!authoritative.tombstone && !current.has(key)) formerEntries.push({ key, entry });
    }));
    if (!authoritative.tombstone) await this.checkClaims(authoritative, options, report);
    if (claimsGuard(authoritative)) {
      const holder = await store.guardHolder(authoritative.half);
      if (holder?.connectionid !== authoritative.half.connectionid) {
        await this.checkGuardOf(authoritative, holder?.connectionid, options, result, report);
      }
    }
    if (found.length > 0) {
      // Judged against the authoritative copy as listed, a copy may only look behind, ahead or different
      // because a change committed since: the findings stand only if the authority, read after the
      // copies, is still as listed. Otherwise the next pass looks again.
      const fresh = await store.read(authoritative.half.record1id, authoritative.half.connectionid);
      if (!fresh || fresh.etag !== authoritative.etag) return;
    }
    for (const violation of found) report(violation);
    if (found.length > 0 && options.repair) {
      await allSettled(rewrite.map(({ table, entity, etag }) => table.write({ op: 'replace', entity, etag }).catch((error: unknown) => {
        if (!isStorageStatus(error, 412) && !isStorageStatus(error, 404)) throw error;
      })));
      try {
        await this.protocol.propagate(authoritative);
      } catch (error) {
        if (!(error instanceof DomainError && error.code === 'DuplicateRecord')) throw error;
        // Another connection took the other half's slot meanwhile (an id used twice): settled by the rule.
        const occupant = await store.read(wanted.half.record1id, wanted.half.connectionid);
        if (occupant && !pairsWith(occupant.half, authoritative.half)) return this.resolveForeignSlot(authoritative, occupant, options, result, report);
        throw error;
      }
      result.repaired += found.length;
    }
    if (found.length === 0 && options.repair) {
      const expired = formerEntries.filter(({ entry }) => !entry || (entry.tombstone && this.expired(entry, options)));
      if (expired.length > 0) result.purged += await this.purgeFormerEntries(authoritative, expired);
    }
  }

  /**
   * A connection whose other half's slot holds another connection's copy (its id used twice). The
   * connection that owns the slot (its copy pairs with a live authority) keeps it; this one is ended
   * (a tombstone committed in its place), as a create that met the slot would have been undone.
   */
  private async resolveForeignSlot(authoritative: StoredCopy, occupant: StoredCopy, options: WalkOptions, result: WalkResult, report: Report): Promise<void> {
    const { store } = this.protocol;
    if (occupant.tombstone) return; // not holding the slot: the next propagation takes it over
    const owner = await store.read(occupant.half.record2id, occupant.half.relatedconnectionid);
    if (!owner || owner.tombstone || !pairsWith(occupant.half, owner.half)) return; // the occupant is itself a leftover: its own check ends it
    report({ kind: 'duplicate-id', table: 'connections', partitionKey: authoritative.half.record1id, rowKey: authoritative.key, detail: `its other half's slot holds ${occupant.half.connectionid} of another connection` });
    if (!options.repair) return;
    await ignoringRace(this.protocol.endDuplicateId(authoritative, new Date(this.clock()).toISOString()));
    result.repaired++;
  }

  /**
   * An active connection whose guard is missing or names another connection. If that other one is a
   * live, active connection with the same records and roles, the two are duplicates: the earliest
   * created (then the lowest id) keeps the guard and stays active, the other is deactivated.
   */
  private async checkGuardOf(authoritative: StoredCopy, holderId: string | undefined, options: WalkOptions, result: WalkResult, report: Report): Promise<void> {
    const { store } = this.protocol;
    const at = { table: 'connections' as const, partitionKey: authoritative.half.record1id, rowKey: guardRowKey(authoritative.half) };
    // Decided on the connection as it is now, not as listed: it may have changed (and let its guard go).
    const fresh = await store.read(authoritative.half.record1id, authoritative.half.connectionid);
    if (!fresh || fresh.etag !== authoritative.etag) return;
    const holder = holderId === undefined ? undefined : await store.read(authoritative.half.record1id, holderId);
    const holderClaims = holder !== undefined && claimsGuard(holder) && guardRowKey(holder.half) === at.rowKey;
    if (!holderClaims) {
      report({ ...at, kind: 'missing-guard', detail: `guard of ${authoritative.half.connectionid}${holderId ? ` names ${holderId}` : ''}` });
      if (!options.repair) return;
      await ignoringRace(store.claimGuard(authoritative));
      result.repaired++;
      return;
    }
    report({ ...at, kind: 'duplicate-active', detail: `${authoritative.half.connectionid} and ${holder.half.connectionid} share records and roles` });
    if (!options.repair) return;
    const [winner, loser] = earliest(holder, authoritative) === holder ? [holder, authoritative] : [authoritative, holder];
    // The winner takes the guard in one transaction with itself as read; only then is the other demoted.
    if (loser === holder) {
      try {
        await store.claimGuard(winner);
      } catch (error) {
        if (isStorageStatus(error, 412) || isStorageStatus(error, 404)) return;
        throw error;
      }
    }
    await ignoringRace(this.protocol.demoteDuplicate(loser, new Date(this.clock()).toISOString()));
    result.repaired++;
  }

  /** A guard must name the live, active authoritative half it guards, in its own partition. */
  private async checkGuard(stored: Stored, options: WalkOptions, result: WalkResult, report: Report): Promise<void> {
    const { partitionKey, rowKey, connectionid } = stored.entity;
    const holder = typeof connectionid === 'string' ? await this.protocol.store.read(partitionKey, connectionid) : undefined;
    if (holder && claimsGuard(holder) && isAuthoritative(holder.half) && guardRowKey(holder.half) === rowKey) return;
    report({ kind: 'orphan-guard', table: 'connections', partitionKey, rowKey, detail: `names ${String(connectionid)}, which does not hold it` });
    if (!options.repair) return;
    await this.protocol.store.deleteIfUnchanged(partitionKey, rowKey, stored.etag);
    result.repaired++;
  }

  /**
   * A derived half must have its authoritative copy; one without (left by data older than this
   * protocol) is an unfinished delete: it becomes a tombstone, purged after the grace period.
   */
  private async checkDerived(derived: StoredCopy, options: WalkOptions, result: WalkResult, report: Report): Promise<void> {
    const { store } = this.protocol;
    const authoritative = await store.read(derived.half.record2id, derived.half.relatedconnectionid);
    if (authoritative && pairsWith(derived.half, authoritative.half)) return; // its own walk checks this copy
    if (derived.tombstone) {
      if (!this.expired(derived, options)) {
        result.skippedRecent++;
        return;
      }
      if (options.repair) {
        await store.deleteIfUnchanged(derived.half.record1id, derived.key, derived.etag);
        result.purged++;
      }
      return;
    }
    report({ kind: 'orphan-twin', table: 'connections', partitionKey: derived.half.record1id, rowKey: derived.key, detail: `no authoritative copy ${derived.half.relatedconnectionid}` });
    if (!options.repair) return;
    await this.protocol.putDerived({ ...derived, half: { ...derived.half, versionnumber: derived.half.versionnumber + 1, modifiedon: new Date(this.clock()).toISOString() }, tombstone: true }, knownVersion(derived));
    result.repaired++;
  }

  /**
   * Every index entry belongs to a connection whose authoritative copy lists it (then phase 1 checks
   * it); any other entry is a leftover: a tombstone is purged after the grace period, a live one removed.
   */
  /**
   * A role reservation (see RoleUsage) is only needed until its connection's commit and index entries
   * are written. Once the grace period is over it is settled: the connection's entries are brought up
   * to date when it has the role (they then show the use), its slot fenced when it has not; either way
   * it is removed.
   */
  private async checkReservation(stored: Stored, options: WalkOptions, result: WalkResult): Promise<void> {
    const reservation = reservationOf(stored.entity, stored.etag);
    if (!options.repair || this.clock() - Date.parse(reservation.reservedon) < (options.settleAfterMs ?? options.graceMs)) return;
    const now = new Date(this.clock()).toISOString();
    if (await this.protocol.usage.settle(reservation, now)) {
      const held = await this.protocol.store.read(reservation.slot.record1id, reservation.slot.connectionid);
      if (!held) return;
      await this.protocol.propagate(held);
      await this.protocol.index.deleteIfUnchanged(reservation.roleId, reservation.rowKey, reservation.etag);
    }
    result.repaired++;
  }

  private async checkIndexEntry(stored: Stored, options: WalkOptions, result: WalkResult, report: Report): Promise<void> {
    if (isReservationRowKey(stored.entity.rowKey)) return this.checkReservation(stored, options, result);
    const entry = fromStored(stored);
    const roleId = stored.entity.partitionKey;
    const { half } = entry;
    const authoritative = await this.protocol.store.read(...(isAuthoritative(half) ? [half.record1id, half.connectionid] as const : [half.record2id, half.relatedconnectionid] as const));
    const key = `${isAuthoritative(half) ? 'a' : 'd'}:${roleId}`;
    const owns = authoritative && (isAuthoritative(half) ? authoritative.half.record2id === half.record2id : pairsWith(half, authoritative.half));
    if (owns && (authoritative.indexed.includes(key) || (currentIndexKeys(authoritative.half) as string[]).includes(key))) return;
    if (entry.tombstone) {
      if (!this.expired(entry, options)) {
        result.skippedRecent++;
        return;
      }
      if (options.repair) {
        await this.protocol.index.deleteIfUnchanged(roleId, stored.entity.rowKey, stored.etag);
        result.purged++;
      }
      return;
    }
    report({ kind: 'orphan-index', table: 'roleIndex', partitionKey: roleId, rowKey: stored.entity.rowKey, detail: `no connection ${half.connectionid} with this role` });
    if (!options.repair) return;
    await this.protocol.index.deleteIfUnchanged(roleId, stored.entity.rowKey, stored.etag);
    result.repaired++;
  }

  /**
   * Forgets the tombstones of roles a live connection no longer plays, once their grace period is over:
   * first the authoritative copy stops listing them (a rewrite as read, same version, so it happens
   * only if nothing changed meanwhile), then the entries go (each only if unchanged).
   */
  private async purgeFormerEntries(authoritative: StoredCopy, former: { key: string; entry: StoredCopy | undefined }[]): Promise<number> {
    const keys = new Set(former.map(({ key }) => key));
    try {
      await this.protocol.store.rewrite({ ...authoritative, indexed: authoritative.indexed.filter((key) => !keys.has(key)) }, authoritative.etag);
    } catch (error) {
      if (isStorageStatus(error, 412) || isStorageStatus(error, 404)) return 0;
      throw error;
    }
    await allSettled(former.flatMap(({ key, entry }) => (entry ? [this.protocol.index.deleteIfUnchanged(key.slice(2), entry.key, entry.etag)] : [])));
    return former.length;
  }

  /**
   * Removes a deleted connection for good, once no request can still write an older version of it:
   * tombstones propagated everywhere first (a crash midway leaves only tombstones), then the derived
   * copies, then the authoritative one, each only if unchanged since read.
   */
  private async purge(authoritative: StoredCopy): Promise<void> {
    const { store, index } = this.protocol;
    await this.protocol.propagate(authoritative);
    const wanted = derivedOf(authoritative);
    const derived = await store.read(wanted.half.record1id, wanted.half.connectionid);
    if (derived?.tombstone && pairsWith(derived.half, authoritative.half)) await store.deleteIfUnchanged(derived.half.record1id, derived.key, derived.etag);
    await allSettled(entriesOf(authoritative).map(async ({ roleId, copy }) => {
      const entry = await index.read(roleId, copy.half);
      const ours = entry && entry.half.record2id === copy.half.record2id && entry.half.relatedconnectionid === copy.half.relatedconnectionid;
      if (ours && entry.tombstone) await index.deleteIfUnchanged(roleId, entry.key, entry.etag);
    }));
    await store.purgeAudit(authoritative);
    await store.purge(authoritative);
  }
}

/** A repair conditional on what it read: when that changed meanwhile (412, 404), the next pass looks again. */
async function ignoringRace(write: Promise<void>): Promise<void> {
  try {
    await write;
  } catch (error) {
    if (!isStorageStatus(error, 412) && !isStorageStatus(error, 404)) throw error;
  }
}

/** The duplicate that stays: the earliest created, then the lowest id. */
function earliest(a: StoredCopy, b: StoredCopy): StoredCopy {
  if (a.half.createdon !== b.half.createdon) return a.half.createdon < b.half.createdon ? a : b;
  return a.half.connectionid < b.half.connectionid ? a : b;
}

/**
 * One slice of the repair job: resumes at the stored checkpoint, repairs until the time budget runs out,
 * and stores where to go on; a finished pass clears the checkpoint, so the next slice starts a new one.
 */
export async function repairSlice(walker: ConsistencyWalker, budgetMs: number, graceMs: number, now: () => number = Date.now): Promise<WalkResult> {
  const from = await walker.loadCheckpoint();
  const result = await walker.walk({ repair: true, graceMs, deadline: now() + budgetMs, persist: true, ...(from && { from }) });
  await walker.saveCheckpoint(result.next);
  return result;
}

import { z } from 'zod';
import { ACTIVE, type ConnectionHalf, INACTIVE, statusOfState } from '../domain/connection';
import { type AuditRecord, auditRecordSchema, changesBetween, masterOrientation, operationOf } from '../domain/audit';
import { idKeyOf, reciprocalIdOf } from '../domain/ids';
import { byRepair } from '../protocol/stamps';
import { conflict, type DomainError, unavailable } from '../domain/errors';
import { countMatching, queryRange, type Range, scanColumns, sharesColumnSchema, type RowFilter } from './ranges';
import { ANY_ETAG, type Condition, isStorageStatus, queryAll, type Stored, type TableEntity, type TablePort, type WriteOp } from './tablePort';

/**
 * Table layout (one table, partitioned by record 1 of each half):
 *   PartitionKey = record1id (lowercase GUID)
 *   RowKey "c_<connectionid>"                       a copy of a connection half (live or tombstone)
 *   RowKey "u_<record2id>_<role1|->_<role2|->"      uniqueness guard of an active connection, only in the
 *                                                   partition of its authoritative half
 *   RowKey "h_<connectionid>_<incarnation>_<version>" audit record of a version (authoritative partition
 *                                                   only), newest first: both numbers stored inverted
 *
 * Of a connection's two halves, the one in the partition of the lower record id is **authoritative**:
 * every change is one ETag-conditional entity group transaction there (the half, version + 1, and its
 * guard), and everything else (the other half, role-index entries) is derived from it by version-fenced
 * writes. Because both directions of a pair meet in the same partition, the guard makes "one active
 * connection per unordered pair of records and roles" a storage rule: the second create fails its
 * conditional insert with 409, whichever side it came from.
 */
const HALF_PREFIX = 'c_';
const HALF_RANGE_END = 'c`'; // the character after '_', so [c_, c`) is exactly the halves
const GUARD_PREFIX = 'u_';
export const GUARD_RANGE = { ge: GUARD_PREFIX, lt: 'u`' };
// Sentinels for open-ended windows, so "active on" is a plain range filter on strings.
const OPEN_START = '0000-01-01T00:00:00.000Z';
const OPEN_END = '9999-12-31T23:59:59.999Z';

export const halfRowKey = (connectionId: string): string => `${HALF_PREFIX}${connectionId}`;

const AUDIT_PREFIX = 'h_';
// Inverted, zero-padded numbers sort newest first: later incarnations, then higher versions.
const inverted = (value: number, digits: number): string => String(10 ** digits - 1 - value).padStart(digits, '0');
const auditPrefix = (connectionId: string): string => `${AUDIT_PREFIX}${connectionId}_`;
/** The records of one incarnation of a connection: another incarnation of its id is another connection. */
export const incarnationAuditPrefix = (half: Pick<ConnectionHalf, 'connectionid' | 'createdon'>): string =>
  `${auditPrefix(half.connectionid)}${inverted(Date.parse(half.createdon), 15)}_`;
const auditRowKey = (half: Pick<ConnectionHalf, 'connectionid' | 'createdon' | 'versionnumber'>): string =>
  `${incarnationAuditPrefix(half)}${inverted(half.versionnumber, 10)}`;

/** The audit record of a commit, as an entity beside the version it records (see shared/audit.ts). */
function auditEntity(next: Copy, previous: Copy | undefined): TableEntity {
  const before = previous && !previous.tombstone ? masterOrientation(previous.half) : undefined;
  const after = masterOrientation(next.half);
  return {
    partitionKey: next.half.record1id,
    rowKey: auditRowKey(next.half),
    operation: operationOf(before, after, next.tombstone, byRepair(next.lastop)),
    userid: next.half.modifiedby,
    changedon: next.half.modifiedon,
    versionnumber: next.half.versionnumber,
    changes: JSON.stringify(changesBetween(before, after)),
  };
}

const auditFromEntity = (entity: Record<string, unknown>): AuditRecord => auditRecordSchema.parse({
  operation: entity.operation,
  userid: entity.userid,
  createdon: entity.changedon,
  versionnumber: entity.versionnumber,
  changes: JSON.parse(String(entity.changes ?? '[]')),
});
export const isHalfRowKey = (rowKey: string): boolean => rowKey.startsWith(HALF_PREFIX);
export const isGuardRowKey = (rowKey: string): boolean => rowKey.startsWith(GUARD_PREFIX);
export const guardRowKey = (half: Pick<ConnectionHalf, 'record2id' | 'record1roleid' | 'record2roleid'>): string =>
  `${GUARD_PREFIX}${half.record2id}_${half.record1roleid ?? '-'}_${half.record2roleid ?? '-'}`;

/** Whether a half is the authoritative one of its connection: the one in the lower record's partition. */
export const isAuthoritative = (half: Pick<ConnectionHalf, 'record1id' | 'record2id'>): boolean => half.record1id < half.record2id;

/**
 * A copy of a connection as stored: its half, whether it is a tombstone (the connection was deleted at
 * this version), and, on the authoritative copy only, the fingerprint of the request that made this
 * version and the role-index entries that may still hold a live copy.
 */
export interface Copy {
  half: ConnectionHalf;
  tombstone: boolean;
  /** Authoritative copy only: fingerprint of the request that committed this version ('' elsewhere). */
  lastop: string;
  /** Authoritative copy only: index keys (see IndexKey) that may hold a live entry ([] elsewhere). */
  indexed: string[];
}

export interface StoredCopy extends Copy {
  /** Storage ETag of this entity, for conditional writes. */
  etag: string;
  /** RowKey of the entity it was read from (a half, or an index entry), for paging. */
  key: string;
}

const nullableText = z.string().nullish().transform((value) => value ?? null);
const jsonList = <T extends z.ZodType>(item: T) =>
  z.string().optional().transform((value) => z.array(item).parse(value === undefined ? [] : JSON.parse(value)));

const storedCopySchema = z.object({
  connectionid: z.string(),
  relatedconnectionid: z.string(),
  ismaster: z.boolean(),
  record1id: z.string(),
  record1objecttypecode: z.number(),
  record1roleid: nullableText,
  record1name: nullableText,
  record2id: z.string(),
  record2objecttypecode: z.number(),
  record2roleid: nullableText,
  record2name: nullableText,
  name: nullableText,
  description: nullableText,
  effectivestart: nullableText,
  effectiveend: nullableText,
  statecode: z.union([z.literal(0), z.literal(1)]),
  statuscode: z.union([z.literal(1), z.literal(2)]),
  ownerid: z.string(),
  createdon: z.string(),
  createdby: z.string(),
  modifiedon: z.string(),
  modifiedby: z.string(),
  versionnumber: z.number(),
  // Arrays are not a Table Storage type: serialised.
  shares: jsonList(sharesColumnSchema.element),
  tombstone: z.boolean().optional().transform((value) => value ?? false),
  lastop: z.string().optional().transform((value) => value ?? ''),
  indexed: jsonList(z.string()),
});

/** A copy as an entity; other tables (the role index) store the same shape under their own keys. */
export function toEntity(copy: Copy, partitionKey = copy.half.record1id, rowKey = halfRowKey(copy.half.connectionid)): TableEntity {
  const entity: TableEntity = {
    partitionKey,
    rowKey,
    windowstart: copy.half.effectivestart ?? OPEN_START,
    windowend: copy.half.effectiveend ?? OPEN_END,
  };
  const { shares, ...fields } = copy.half;
  for (const [key, value] of Object.entries(fields)) {
    // Table storage drops nulls anyway; leaving them out keeps entities small.
    if (value !== null) entity[key] = value;
  }
  entity.shares = JSON.stringify(shares);
  entity.tombstone = copy.tombstone;
  if (copy.lastop) entity.lastop = copy.lastop;
  if (copy.indexed.length > 0) entity.indexed = JSON.stringify(copy.indexed);
  return entity;
}

export function fromStored(stored: Stored): StoredCopy {
  const { shares, tombstone, lastop, indexed, ...half } = storedCopySchema.parse(stored.entity);
  return { half: { ...half, shares }, tombstone, lastop, indexed, etag: stored.etag, key: stored.entity.rowKey };
}

/** What readers see: tombstones are the protocol's, never a client's. */
export const isLive = (copy: Pick<Copy, 'tombstone'>): boolean => !copy.tombstone;

interface GuardHolder {
  /** The authoritative half holding the guard, and its twin (absent on guards older than this protocol). */
  connectionid: string;
  relatedconnectionid?: string;
}

const guardEntity = (half: ConnectionHalf): TableEntity => ({
  partitionKey: half.record1id,
  rowKey: guardRowKey(half),
  connectionid: half.connectionid,
  relatedconnectionid: half.relatedconnectionid,
});

/** Whether a copy claims the uniqueness guard: a live, active connection. */
export const claimsGuard = (copy: Copy): boolean => !copy.tombstone && copy.half.statecode === ACTIVE;

export interface HalfQuery {
  recordId: string;
  otherTypeCode?: number;
  otherRecordId?: string;
  roleId?: string;
  otherRoleId?: string;
  statecode?: number;
  activeOn?: string;
}

const MAX_FENCE_ROUNDS = 10;

/**
 * Where a copy stands in its connection's history. Versions order the changes of one incarnation; a
 * connection id deleted, purged and created again starts a new incarnation with a later `createdon`,
 * so a late write of the old one still loses.
 */
export interface CopyVersion {
  createdon: string;
  version: number;
}

/** Whether `a` is a later state than `b`. */
export const isLater = (a: CopyVersion, b: CopyVersion): boolean =>
  a.createdon > b.createdon || (a.createdon === b.createdon && a.version > b.version);

/** The version, owner and ETag of a copy as last read. */
export interface KnownVersion extends CopyVersion {
  etag: string;
  tombstone: boolean;
  /** Whose copy it is: the other half it pairs with ("<record2id>/<relatedconnectionid>"). */
  owner: string;
}

const ownerOf = (properties: Record<string, unknown>): string => `${String(properties.record2id)}/${String(properties.relatedconnectionid)}`;
const versionOf = (properties: Record<string, unknown>): CopyVersion => ({ createdon: String(properties.createdon), version: Number(properties.versionnumber) });

export const knownVersion = (copy: StoredCopy): KnownVersion => ({
  createdon: copy.half.createdon, version: copy.half.versionnumber, etag: copy.etag, tombstone: copy.tombstone, owner: `${copy.half.record2id}/${copy.half.relatedconnectionid}`,
});

/** The slot a copy would go to holds a copy of another connection (a connection id used twice). */
export const foreignCopy = (): DomainError =>
  conflict('DuplicateRecord', 'This connection id is already used by a connection between other records: choose another connectionid.');

/**
 * Writes a derived copy (the other half, an index entry) so that it only ever moves forward: it
 * replaces what is stored only when that is an earlier state of the same connection, and otherwise
 * leaves it. Any process may repeat it at any time, in any order, with any older or newer version, and
 * the copy still ends at the latest state written. A slot held by another connection's copy is never
 * written: a live copy is refused (foreignCopy), a tombstone is simply not needed there. `known` is the
 * stored copy when the caller has just read it, or null when it is believed absent (a first write tries
 * an insert without reading).
 */
export async function fencedPut(table: TablePort, entity: TableEntity, known?: KnownVersion | null): Promise<'ours' | 'foreign'> {
  const wanted = versionOf(entity);
  const owner = ownerOf(entity);
  let current = known;
  for (let round = 0; round < MAX_FENCE_ROUNDS; round++) {
    if (current === undefined) {
      const stored = await table.get(entity.partitionKey, entity.rowKey);
      current = stored ? { ...versionOf(stored.entity), etag: stored.etag, owner: ownerOf(stored.entity), tombstone: stored.entity.tombstone === true } : null;
    }
    if (current !== null && current.owner !== owner) {
      // Another connection's copy (live, or its tombstone until the grace period is over) holds the slot.
      if (entity.tombstone === true) return 'foreign';
      throw foreignCopy();
    }
    if (current !== null && !isLater(wanted, current)) return 'ours';
    try {
      await table.write(current === null ? { op: 'insert', entity } : { op: 'replace', entity, etag: current.etag });
      return 'ours';
    } catch (error) {
      // Someone else wrote it meanwhile (409: it appeared, 412: it changed, 404: it was purged): look again.
      if (!isStorageStatus(error, 409) && !isStorageStatus(error, 412) && !isStorageStatus(error, 404)) throw error;
      current = undefined;
    }
  }
  throw unavailable('A copy of the connection is being written by many requests at once; retry the request.', 1);
}

/** Whether a derived copy and an authoritative one are two halves of one connection. */
export const pairsWith = (derived: ConnectionHalf, authoritative: ConnectionHalf): boolean =>
  authoritative.record2id === derived.record1id && authoritative.relatedconnectionid === derived.connectionid &&
  derived.record2id === authoritative.record1id && derived.relatedconnectionid === authoritative.connectionid;

/**
 * Id claims make a connection id unique across all records, which no partition can do alone:
 *   PartitionKey "i_<claim key>" (idKeyOf: the same for both ids of a connection), RowKey "claim"
 * The row names the authoritative slot (record 1, connection id) whose connection owns the id. A create
 * claims the id before it commits; another slot takes a claim over only after fencing the slot it
 * names (fenceSlot), so a commit decided before the takeover can no longer land. Claims are never
 * deleted: a claim naming a slot that no longer holds the id is simply taken over.
 */
const CLAIM_PARTITION_PREFIX = 'i_';
const CLAIM_ROW = 'claim';
export const claimPartitionOf = (connectionId: string): string => `${CLAIM_PARTITION_PREFIX}${idKeyOf(connectionId)}`;
export const isClaimPartition = (partitionKey: string): boolean => partitionKey.startsWith(CLAIM_PARTITION_PREFIX);

/** The slot a claim names, and what a fence there needs to write a tombstone. */
export interface ClaimedSlot {
  record1id: string;
  connectionid: string;
  record2id: string;
  record1objecttypecode: number;
  record2objecttypecode: number;
}

export interface IdClaim extends ClaimedSlot {
  /** When it was claimed (the claiming request's time). */
  claimedon: string;
  etag: string;
}

const claimSchema = z.object({
  record1id: z.string(),
  connectionid: z.string(),
  record2id: z.string(),
  record1objecttypecode: z.number(),
  record2objecttypecode: z.number(),
  claimedon: z.string(),
});

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

/** Whether a copy is a fence's tombstone (version 0): it stands for no connection, and has no other copies. */
export const isFence = (copy: Copy): boolean => copy.tombstone && copy.half.versionnumber === 0;

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

export class ConnectionStore {
  constructor(readonly table: TablePort) {}

  async read(recordId: string, connectionId: string): Promise<StoredCopy | undefined> {
    const stored = await this.table.get(recordId, halfRowKey(connectionId));
    return stored && fromStored(stored);
  }

  async readClaim(connectionId: string): Promise<IdClaim | undefined> {
    const stored = await this.table.get(claimPartitionOf(connectionId), CLAIM_ROW);
    return stored && { ...claimSchema.parse(stored.entity), etag: stored.etag };
  }

  /**
   * Claims an id for a slot: inserted (409 when someone holds it), or, given the ETag of the claim as
   * read, replaced (412/404 when it changed meanwhile). A replace by the claim's own slot only moves its
   * ETag: that confirms it after a read of the slot, so a takeover that read it before fails.
   */
  async writeClaim(connectionId: string, slot: ClaimedSlot, claimedon: string, etag?: string): Promise<void> {
    const entity: TableEntity = { partitionKey: claimPartitionOf(connectionId), rowKey: CLAIM_ROW, ...slot, claimedon };
    await this.table.write(etag === undefined ? { op: 'insert', entity } : { op: 'replace', entity, etag });
  }

  /**
   * Fences a slot: after this, no commit decided on what the slot held before can land (commits are
   * conditional on the slot's ETag, or on its absence). A copy is rewritten as it is; an empty slot gets
   * a tombstone. Throws 409/412/404 when the slot changed since `held` was read.
   */
  async fenceSlot(slot: ClaimedSlot, held: StoredCopy | undefined, now: string): Promise<void> {
    if (!held) await this.table.write({ op: 'insert', entity: toEntity(fenceTombstone(slot, now)) });
    // A tombstone fenced is kept for a whole grace period from now: purged earlier, its slot would be
    // empty again while the write it fenced out may still be running.
    else if (held.tombstone) await this.rewrite({ ...held, half: { ...held.half, modifiedon: now > held.half.modifiedon ? now : held.half.modifiedon } }, held.etag);
    else await this.rewrite(held, held.etag);
  }

  /** The connection holding the guard an authoritative half would take, if any. */
  async guardHolder(authoritative: ConnectionHalf): Promise<GuardHolder | undefined> {
    const stored = await this.table.get(authoritative.record1id, guardRowKey(authoritative));
    if (!stored) return undefined;
    // Guards of data older than this protocol name only the connection id.
    const related = stored.entity.relatedconnectionid;
    return { connectionid: String(stored.entity.connectionid), ...(typeof related === 'string' && { relatedconnectionid: related }) };
  }

  /**
   * Commits a version of a connection on its authoritative copy: one entity group transaction that
   * inserts it (no `previous`) or replaces `previous` if its ETag still matches, and moves the guard
   * with it. The guard only ever changes in the same transaction as its half, so it always names the
   * live, active authoritative half it guards, and can be deleted here without a check (`holdsGuard`
   * false is for the repair job's demotion of a duplicate, which never held it). Throws 409
   * (the row exists, or another connection holds the guard) or 412 (the copy changed) and writes nothing.
   */
  async commit(next: Copy, previous: StoredCopy | undefined, holdsGuard = true): Promise<void> {
    const ops: WriteOp[] = [
      previous ? { op: 'replace', entity: toEntity(next), etag: previous.etag } : { op: 'insert', entity: toEntity(next) },
      { op: 'insert', entity: auditEntity(next, previous) },
    ];
    const oldGuard = previous && holdsGuard && claimsGuard(previous) ? guardRowKey(previous.half) : undefined;
    const newGuard = claimsGuard(next) ? guardRowKey(next.half) : undefined;
    if (oldGuard !== newGuard) {
      if (oldGuard) ops.push({ op: 'delete', partitionKey: next.half.record1id, rowKey: oldGuard, etag: ANY_ETAG });
      if (newGuard) ops.push({ op: 'insert', entity: guardEntity(next.half) });
    }
    await this.table.batch(ops);
  }

  /** Rewrites the authoritative copy as it is, if unchanged since read (bookkeeping of the repair job). */
  async rewrite(copy: Copy, etag: string): Promise<void> {
    await this.table.write({ op: 'replace', entity: toEntity(copy), etag });
  }

  /** Writes a derived half: version-fenced (see fencedPut). */
  putDerived(copy: Copy, known?: KnownVersion | null): Promise<'ours' | 'foreign'> {
    return fencedPut(this.table, toEntity(copy), known);
  }

  /** Deletes a copy if it is still the one read (a tombstone whose grace has passed). */
  async purge(copy: StoredCopy): Promise<void> {
    await this.deleteIfUnchanged(copy.half.record1id, halfRowKey(copy.half.connectionid), copy.etag);
  }

  /**
   * Gives an authoritative half the guard it should hold (repair only: the protocol never loses one),
   * in one transaction with a rewrite of the half as read, so it happens only if the half is still in
   * the state that claims it.
   */
  async claimGuard(authoritative: StoredCopy): Promise<void> {
    await this.table.batch([
      { op: 'replace', entity: toEntity(authoritative), etag: authoritative.etag },
      { op: 'upsert', entity: guardEntity(authoritative.half) },
    ]);
  }

  async deleteIfUnchanged(partitionKey: string, rowKey: string, etag: string): Promise<void> {
    try {
      await this.table.write({ op: 'delete', partitionKey, rowKey, etag });
    } catch (error) {
      if (!isStorageStatus(error, 404) && !isStorageStatus(error, 412)) throw error;
    }
  }

  /**
   * Up to `limit` audit records of a connection (by its authoritative copy), newest first, after a row
   * key: of its own incarnation only (an earlier incarnation of the id, deleted, may have had other
   * readers).
   */
  auditRange(authoritative: Pick<ConnectionHalf, 'record1id' | 'connectionid' | 'createdon'>, limit: number, after?: string): Promise<Range<{ key: string; record: AuditRecord }>> {
    const prefix = incarnationAuditPrefix(authoritative);
    return queryRange(this.table, { partitionKey: authoritative.record1id, rowKey: { ...(after === undefined ? { ge: prefix } : { gt: after }), lt: `${prefix}~` } }, limit,
      (stored) => ({ key: stored.entity.rowKey, record: auditFromEntity(stored.entity) }));
  }

  /**
   * Removes the audit records of a purged connection: those of its incarnation and earlier ones (a
   * later incarnation of the id, made since, keeps its own). Before the copy itself, so a stop midway
   * leaves the tombstone, and the next pass finishes.
   */
  async purgeAudit(authoritative: StoredCopy): Promise<void> {
    const prefix = auditPrefix(authoritative.half.connectionid);
    const from = `${prefix}${inverted(Date.parse(authoritative.half.createdon), 15)}`;
    for await (const page of queryAll(this.table, { partitionKey: authoritative.half.record1id, rowKey: { ge: from, lt: `${prefix}~` }, select: [] }, 100)) {
      if (page.length > 0) await this.table.batch(page.map(({ entity }): WriteOp => ({ op: 'delete', partitionKey: entity.partitionKey, rowKey: entity.rowKey, etag: ANY_ETAG })));
    }
  }

  /** Up to `limit` of a record's halves (tombstones included) after a row key: one partition range query. */
  range(query: HalfQuery, limit: number, after?: string): Promise<Range<StoredCopy>> {
    return queryRange(this.table, halfQuery(query, after), limit, fromStored);
  }

  count(query: HalfQuery, visible?: RowFilter): Promise<number> {
    return countMatching(this.table, halfQuery(query), visible);
  }

  /** The role ids a record's live (and visible) halves give it, one entry per half that has one. */
  async rolesOf(recordId: string, visible?: RowFilter): Promise<string[]> {
    const roles: string[] = [];
    await scanColumns(this.table, halfQuery({ recordId }), ['record1roleid'], visible, (entity) => {
      if (typeof entity.record1roleid === 'string') roles.push(entity.record1roleid);
    });
    return roles;
  }
}

function halfQuery(query: HalfQuery, after?: string) {
  const where: Condition[] = [];
  if (query.otherTypeCode !== undefined) where.push({ property: 'record2objecttypecode', op: 'eq', value: query.otherTypeCode });
  if (query.otherRecordId !== undefined) where.push({ property: 'record2id', op: 'eq', value: query.otherRecordId });
  if (query.roleId !== undefined) where.push({ property: 'record1roleid', op: 'eq', value: query.roleId });
  if (query.otherRoleId !== undefined) where.push({ property: 'record2roleid', op: 'eq', value: query.otherRoleId });
  if (query.statecode !== undefined) where.push({ property: 'statecode', op: 'eq', value: query.statecode });
  if (query.activeOn !== undefined) {
    where.push({ property: 'windowstart', op: 'le', value: query.activeOn }, { property: 'windowend', op: 'ge', value: query.activeOn });
  }
  return {
    partitionKey: query.recordId,
    rowKey: after === undefined ? { ge: HALF_PREFIX, lt: HALF_RANGE_END } : { gt: after, lt: HALF_RANGE_END },
    where,
  };
}

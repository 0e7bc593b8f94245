// Storage: the connections table's layout (halves, guards, audit records, id claims) and its rows.
import { z } from 'zod';
import type { ConnectionHalf } from '../domain/connection';
import { type AuditRecord, auditRecordSchema } from '../domain/audit';
import { idKeyOf } from '../domain/ids';
import { countMatching, queryRange, type Range, type RowFilter, scanColumns, sharesColumnSchema } from './ranges';
import {
  ANY_ETAG,
  type Condition,
  isStorageStatus,
  queryAll,
  type Stored,
  type TableEntity,
  type TablePort,
  type WriteOp,
} from './tablePort';

/**
 * Table layout (one table, partitioned by record 1 of each half):
 *   PartitionKey = record1id (lowercase GUID)
 *   RowKey "c_<connectionid>"                       a copy of a connection half (live or tombstone)
 *   RowKey "u_<record2id>_<role1|->_<role2|->"      uniqueness guard of an active connection, only in the
 *                                                   partition of its authoritative half
 *   RowKey "h_<connectionid>_<incarnation>_<version>" audit record of a version (authoritative partition
 *                                                   only), newest first: both numbers stored inverted
 *
 * The rules of what is written where and when (the authoritative half, derived copies, fences, the guard)
 * are the write protocol's (shared/protocol/); this module only maps rows and runs single conditional
 * operations and the transactions it is given. Because both directions of a pair meet in the partition of
 * the authoritative half, the guard makes "one active connection per unordered pair of records and roles"
 * a storage rule: the second create fails its conditional insert with 409, whichever side it came from.
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

/** An audit record (built by the protocol, see protocol/commit.ts) as the entity beside the version it records. */
const auditEntity = (half: ConnectionHalf, record: AuditRecord): TableEntity => ({
  partitionKey: half.record1id,
  rowKey: auditRowKey(half),
  operation: record.operation,
  userid: record.userid,
  changedon: record.createdon,
  versionnumber: record.versionnumber,
  changes: JSON.stringify(record.changes),
});

const auditFromEntity = (entity: Record<string, unknown>): AuditRecord =>
  auditRecordSchema.parse({
    operation: entity.operation,
    userid: entity.userid,
    createdon: entity.changedon,
    versionnumber: entity.versionnumber,
    changes: JSON.parse(typeof entity.changes === 'string' ? entity.changes : '[]') as unknown,
  });
export const isHalfRowKey = (rowKey: string): boolean => rowKey.startsWith(HALF_PREFIX);
export const isGuardRowKey = (rowKey: string): boolean => rowKey.startsWith(GUARD_PREFIX);
export const guardRowKey = (half: Pick<ConnectionHalf, 'record2id' | 'record1roleid' | 'record2roleid'>): string =>
  `${GUARD_PREFIX}${half.record2id}_${half.record1roleid ?? '-'}_${half.record2roleid ?? '-'}`;

/**
 * A row holding a copy of a connection half (a half, or a role-index entry): the half, whether it is a
 * tombstone, and the protocol's bookkeeping (`lastop`, `indexed`; see protocol/copies.ts, Copy).
 */
export interface CopyRow {
  half: ConnectionHalf;
  tombstone: boolean;
  lastop: string;
  indexed: string[];
}

export interface StoredCopyRow extends CopyRow {
  /** Storage ETag of this entity, for conditional writes. */
  etag: string;
  /** RowKey of the entity it was read from (a half, or an index entry), for paging. */
  key: string;
}

const nullableText = z
  .string()
  .nullish()
  .transform((value) => value ?? null);
const jsonList = <T extends z.ZodType>(item: T) =>
  z
    .string()
    .optional()
    .transform((value) => z.array(item).parse(value === undefined ? [] : JSON.parse(value)));

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
  tombstone: z
    .boolean()
    .optional()
    .transform((value) => value ?? false),
  lastop: z
    .string()
    .optional()
    .transform((value) => value ?? ''),
  indexed: jsonList(z.string()),
});

/** A copy as an entity; other tables (the role index) store the same shape under their own keys. */
export function toEntity(
  copy: CopyRow,
  partitionKey = copy.half.record1id,
  rowKey = halfRowKey(copy.half.connectionid),
): TableEntity {
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

export function fromStored(stored: Stored): StoredCopyRow {
  const { shares, tombstone, lastop, indexed, ...half } = storedCopySchema.parse(stored.entity);
  return { half: { ...half, shares }, tombstone, lastop, indexed, etag: stored.etag, key: stored.entity.rowKey };
}

/** The connection holding a guard (row "u_..."), as the guard names it. */
export interface GuardHolder {
  /** The authoritative half holding the guard, and its derived half (absent on guards older than this protocol). */
  connectionid: string;
  relatedconnectionid?: string;
}

const guardEntity = (half: ConnectionHalf): TableEntity => ({
  partitionKey: half.record1id,
  rowKey: guardRowKey(half),
  connectionid: half.connectionid,
  relatedconnectionid: half.relatedconnectionid,
});

export interface HalfQuery {
  recordId: string;
  otherTypeCode?: number;
  otherRecordId?: string;
  roleId?: string;
  otherRoleId?: string;
  statecode?: number;
  activeOn?: string;
}

/** What a fenced write (protocol/copies.ts) needs of a stored copy: its version and owner, read without parsing the rest. */
export interface RowVersion {
  createdon: string;
  versionnumber: number;
  record2id: string;
  relatedconnectionid: string;
  tombstone: boolean;
  etag: string;
}

/** The version of the copy stored at a key, or null when there is none: one point read. */
export async function readRowVersion(
  table: TablePort,
  partitionKey: string,
  rowKey: string,
): Promise<RowVersion | null> {
  const stored = await table.get(partitionKey, rowKey);
  if (!stored) return null;
  const { entity } = stored;
  return {
    createdon: String(entity.createdon),
    versionnumber: Number(entity.versionnumber),
    record2id: String(entity.record2id),
    relatedconnectionid: String(entity.relatedconnectionid),
    tombstone: entity.tombstone === true,
    etag: stored.etag,
  };
}

/** Inserts an entity (etag null: 409 when it exists) or replaces it if its ETag is still `etag` (412/404 otherwise). */
export async function insertOrReplace(table: TablePort, entity: TableEntity, etag: string | null): Promise<void> {
  await table.write(etag === null ? { op: 'insert', entity } : { op: 'replace', entity, etag });
}

/**
 * Id claims make a connection id unique across all records, which no partition can do alone:
 *   PartitionKey "i_<claim key>" (idKeyOf: the same for both ids of a connection), RowKey "claim"
 * The row names the authoritative slot (record 1, connection id) whose connection owns the id. A create
 * claims the id before it commits; another slot takes a claim over only after fencing the slot it
 * names (protocol/claims.ts, fenceSlot), so a commit decided before the takeover can no longer land. Claims are never
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

export class ConnectionStore {
  constructor(readonly table: TablePort) {}

  async read(recordId: string, connectionId: string): Promise<StoredCopyRow | undefined> {
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

  /** Inserts a copy where none is (409 when the row exists). */
  async insert(copy: CopyRow): Promise<void> {
    await this.table.write({ op: 'insert', entity: toEntity(copy) });
  }

  /** The connection holding the guard an authoritative half would take, if any. */
  async guardHolder(authoritative: ConnectionHalf): Promise<GuardHolder | undefined> {
    const stored = await this.table.get(authoritative.record1id, guardRowKey(authoritative));
    if (!stored) return undefined;
    // Guards of data older than this protocol name only the connection id.
    const related = stored.entity.relatedconnectionid;
    return {
      connectionid: String(stored.entity.connectionid),
      ...(typeof related === 'string' && { relatedconnectionid: related }),
    };
  }

  /**
   * One commit on an authoritative copy, as the protocol decided it (protocol/commit.ts): one entity group
   * transaction that inserts `next` (no `previous`) or replaces `previous` if its ETag still matches, inserts
   * its audit record, and moves the guard: `guard.release` deletes the guard of `previous`, `guard.take`
   * inserts the one of `next` (nothing when they are the same row). Throws 409 (the row exists, or another
   * connection holds the guard) or 412 (the copy changed) and writes nothing.
   */
  async commit(
    next: CopyRow,
    previous: StoredCopyRow | undefined,
    audit: AuditRecord,
    guard: { release: boolean; take: boolean },
  ): Promise<void> {
    const ops: WriteOp[] = [
      previous
        ? { op: 'replace', entity: toEntity(next), etag: previous.etag }
        : { op: 'insert', entity: toEntity(next) },
      { op: 'insert', entity: auditEntity(next.half, audit) },
    ];
    const oldGuard = previous && guard.release ? guardRowKey(previous.half) : undefined;
    const newGuard = guard.take ? guardRowKey(next.half) : undefined;
    if (oldGuard !== newGuard) {
      if (oldGuard) ops.push({ op: 'delete', partitionKey: next.half.record1id, rowKey: oldGuard, etag: ANY_ETAG });
      if (newGuard) ops.push({ op: 'insert', entity: guardEntity(next.half) });
    }
    await this.table.batch(ops);
  }

  /** Rewrites the authoritative copy as it is, if unchanged since read (bookkeeping of the repair job). */
  async rewrite(copy: CopyRow, etag: string): Promise<void> {
    await this.table.write({ op: 'replace', entity: toEntity(copy), etag });
  }

  /** The version of the half stored in a slot (for a fenced write of a derived half). */
  readVersion(half: Pick<ConnectionHalf, 'record1id' | 'connectionid'>): Promise<RowVersion | null> {
    return readRowVersion(this.table, half.record1id, halfRowKey(half.connectionid));
  }

  /** Writes a half: an insert (etag null) or a replace if unchanged since read. */
  async write(copy: CopyRow, etag: string | null): Promise<void> {
    await insertOrReplace(this.table, toEntity(copy), etag);
  }

  /** Deletes a copy if it is still the one read (a tombstone whose grace has passed). */
  async purge(copy: StoredCopyRow): Promise<void> {
    await this.deleteIfUnchanged(copy.half.record1id, halfRowKey(copy.half.connectionid), copy.etag);
  }

  /**
   * Gives an authoritative half the guard it should hold (repair only: the protocol never loses one),
   * in one transaction with a rewrite of the half as read, so it happens only if the half is still in
   * the state that claims it.
   */
  async claimGuard(authoritative: StoredCopyRow): Promise<void> {
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
  auditRange(
    authoritative: Pick<ConnectionHalf, 'record1id' | 'connectionid' | 'createdon'>,
    limit: number,
    after?: string,
  ): Promise<Range<{ key: string; record: AuditRecord }>> {
    const prefix = incarnationAuditPrefix(authoritative);
    return queryRange(
      this.table,
      {
        partitionKey: authoritative.record1id,
        rowKey: { ...(after === undefined ? { ge: prefix } : { gt: after }), lt: `${prefix}~` },
      },
      limit,
      (stored) => ({ key: stored.entity.rowKey, record: auditFromEntity(stored.entity) }),
    );
  }

  /**
   * Removes the audit records of a purged connection: those of its incarnation and earlier ones (a
   * later incarnation of the id, made since, keeps its own). Before the copy itself, so a stop midway
   * leaves the tombstone, and the next pass finishes.
   */
  async purgeAudit(authoritative: StoredCopyRow): Promise<void> {
    const prefix = auditPrefix(authoritative.half.connectionid);
    const from = `${prefix}${inverted(Date.parse(authoritative.half.createdon), 15)}`;
    for await (const page of queryAll(
      this.table,
      { partitionKey: authoritative.half.record1id, rowKey: { ge: from, lt: `${prefix}~` }, select: [] },
      100,
    )) {
      if (page.length > 0)
        await this.table.batch(
          page.map(({ entity }): WriteOp => ({
            op: 'delete',
            partitionKey: entity.partitionKey,
            rowKey: entity.rowKey,
            etag: ANY_ETAG,
          })),
        );
    }
  }

  /** Up to `limit` of a record's halves (tombstones included) after a row key: one partition range query. */
  range(query: HalfQuery, limit: number, after?: string): Promise<Range<StoredCopyRow>> {
    return queryRange(this.table, halfQuery(query, after), limit, fromStored);
  }

  count(query: HalfQuery, visible?: RowFilter): Promise<number> {
    return countMatching(this.table, halfQuery(query), visible);
  }

  /** The role ids a record's live (and visible) halves give it, one entry per half that has one. */
  async roleIdsOfRecord(recordId: string, visible?: RowFilter): Promise<string[]> {
    const roles: string[] = [];
    await scanColumns(this.table, halfQuery({ recordId }), ['record1roleid'], visible, (entity) => {
      if (typeof entity.record1roleid === 'string') roles.push(entity.record1roleid);
    });
    return roles;
  }
}

function halfQuery(query: HalfQuery, after?: string) {
  const where: Condition[] = [];
  if (query.otherTypeCode !== undefined)
    where.push({ property: 'record2objecttypecode', op: 'eq', value: query.otherTypeCode });
  if (query.otherRecordId !== undefined) where.push({ property: 'record2id', op: 'eq', value: query.otherRecordId });
  if (query.roleId !== undefined) where.push({ property: 'record1roleid', op: 'eq', value: query.roleId });
  if (query.otherRoleId !== undefined) where.push({ property: 'record2roleid', op: 'eq', value: query.otherRoleId });
  if (query.statecode !== undefined) where.push({ property: 'statecode', op: 'eq', value: query.statecode });
  if (query.activeOn !== undefined) {
    where.push(
      { property: 'windowstart', op: 'le', value: query.activeOn },
      { property: 'windowend', op: 'ge', value: query.activeOn },
    );
  }
  return {
    partitionKey: query.recordId,
    rowKey: after === undefined ? { ge: HALF_PREFIX, lt: HALF_RANGE_END } : { gt: after, lt: HALF_RANGE_END },
    where,
  };
}

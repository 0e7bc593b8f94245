import { odata, type TableClient, type TableEntityResult, type TransactionAction } from '@azure/data-tables';
import { z } from 'zod';
import { ACTIVE, type ConnectionHalf } from '../connection';
import { isStorageStatus } from './errors';
import { countMatching, queryRange, type Range, scanColumns, shareListSchema, type Visibility } from './paging';

/**
 * Table layout (one table, partitioned by record 1 of each half):
 *   PartitionKey = record1id (lowercase GUID)
 *   RowKey "c_<connectionid>"                       a connection half: point read by id, prefix range lists
 *   RowKey "u_<record2id>_<role1|->_<role2|->"      uniqueness guard of an active half, written in the same
 *                                                   entity group transaction as the half it guards
 * The guard makes "one active connection per record1, record2, role1, role2" a storage rule: a second
 * create fails its conditional insert with 409 instead of racing a read.
 */
const HALF_PREFIX = 'c_';
const HALF_RANGE_END = 'c`'; // the character after '_', so [c_, c`) is exactly the halves
const GUARD_PREFIX = 'u_';
// Sentinels for open-ended windows, so "active on" is a plain range filter on strings.
const OPEN_START = '0000-01-01T00:00:00.000Z';
const OPEN_END = '9999-12-31T23:59:59.999Z';

export const halfRowKey = (connectionId: string): string => `${HALF_PREFIX}${connectionId}`;
export const guardRowKey = (half: Pick<ConnectionHalf, 'record2id' | 'record1roleid' | 'record2roleid'>): string =>
  `${GUARD_PREFIX}${half.record2id}_${half.record1roleid ?? '-'}_${half.record2roleid ?? '-'}`;

const nullableText = z.string().nullish().transform((value) => value ?? null);
const storedHalfSchema = z.object({
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
  // Serialised: arrays are not a Table Storage type. Absent on entities written before sharing existed.
  shares: z
    .string()
    .optional()
    .transform((value) => shareListSchema.parse(value === undefined ? [] : JSON.parse(value))),
});

export interface StoredHalf {
  half: ConnectionHalf;
  /** Storage ETag of this entity, for conditional writes. */
  etag: string;
  /** RowKey of the entity it was read from (a half, or an index entry), for paging. */
  key: string;
}

export type Entity = Record<string, string | number | boolean> & { partitionKey: string; rowKey: string };

/** A half as an entity; other tables (the role index) store the same shape under their own keys. */
export function toEntity(half: ConnectionHalf): Entity {
  const entity: Entity = {
    partitionKey: half.record1id,
    rowKey: halfRowKey(half.connectionid),
    windowstart: half.effectivestart ?? OPEN_START,
    windowend: half.effectiveend ?? OPEN_END,
  };
  const { shares, ...fields } = half;
  for (const [key, value] of Object.entries(fields)) {
    // Table storage drops nulls anyway; leaving them out keeps entities small.
    if (value !== null) entity[key] = value;
  }
  entity.shares = JSON.stringify(shares);
  return entity;
}

export function fromEntity(entity: TableEntityResult<Record<string, unknown>>): StoredHalf {
  return { half: storedHalfSchema.parse(entity), etag: entity.etag, key: String(entity.rowKey) };
}

const guardEntity = (half: ConnectionHalf): Entity => ({
  partitionKey: half.record1id,
  rowKey: guardRowKey(half),
  connectionid: half.connectionid,
});

const isActive = (half: ConnectionHalf): boolean => half.statecode === ACTIVE;

export interface HalfQuery {
  recordId: string;
  otherTypeCode?: number;
  otherRecordId?: string;
  roleId?: string;
  otherRoleId?: string;
  statecode?: number;
  activeOn?: string;
}

export class ConnectionStore {
  constructor(readonly client: TableClient) {}

  async read(recordId: string, connectionId: string): Promise<StoredHalf | undefined> {
    try {
      return fromEntity(await this.client.getEntity(recordId, halfRowKey(connectionId)));
    } catch (error) {
      if (isStorageStatus(error, 404)) return undefined;
      throw error;
    }
  }

  /** The id of the active connection holding the guard a half would take, if any. */
  async guardHolder(half: ConnectionHalf): Promise<string | undefined> {
    try {
      const guard = await this.client.getEntity<{ connectionid: string }>(half.record1id, guardRowKey(half));
      return guard.connectionid;
    } catch (error) {
      if (isStorageStatus(error, 404)) return undefined;
      throw error;
    }
  }

  /**
   * Inserts a new half and, when active, its guard, in one transaction. Throws a 409 RestError when the
   * id or the guard is taken.
   */
  async insert(half: ConnectionHalf): Promise<void> {
    const actions: TransactionAction[] = [['create', toEntity(half)]];
    if (isActive(half)) actions.push(['create', guardEntity(half)]);
    await this.client.submitTransaction(actions);
  }

  /**
   * Replaces a half whose stored version is `previous`, conditional on its ETag, moving its guard as the
   * state or roles change. Throws 412 when the half changed meanwhile, 409 when the new guard is taken.
   */
  async replace(next: ConnectionHalf, previous: StoredHalf): Promise<void> {
    const actions: TransactionAction[] = [['update', toEntity(next), 'Replace', { etag: previous.etag }]];
    const oldGuard = isActive(previous.half) ? guardRowKey(previous.half) : undefined;
    const newGuard = isActive(next) ? guardRowKey(next) : undefined;
    if (oldGuard !== newGuard) {
      // After an interrupted operation a newer connection may hold the old key: leave its guard alone.
      if (oldGuard && (await this.guardHolder(previous.half)) === previous.half.connectionid) actions.push(['delete', guardEntity(previous.half)]);
      if (newGuard) actions.push(['create', guardEntity(next)]);
    }
    await this.client.submitTransaction(actions);
  }

  /**
   * Writes a half unconditionally with its guard in the state it should have: used for the twin, whose
   * content is always derived from the master. Falls back to single operations when the guard drifted.
   */
  async put(half: ConnectionHalf): Promise<void> {
    const guardAction: TransactionAction = isActive(half) ? ['upsert', guardEntity(half), 'Replace'] : ['delete', guardEntity(half)];
    try {
      await this.client.submitTransaction([['upsert', toEntity(half), 'Replace'], guardAction]);
    } catch (error) {
      if (!isStorageStatus(error, 404)) throw error;
      // The guard to delete was already gone: write the half alone.
      await this.client.upsertEntity(toEntity(half), 'Replace');
    }
  }

  /**
   * Writes the twin of a master just created. Its guard is inserted, not overwritten: when another
   * active connection between the same records already holds it (the same connection made from the
   * other side while that one's twin lagged behind), that connection's id is returned and nothing is
   * written. A guard left by a half that is gone or inactive is taken over.
   */
  async putTwin(half: ConnectionHalf): Promise<string | undefined> {
    if (!isActive(half)) {
      await this.put(half);
      return undefined;
    }
    try {
      await this.client.submitTransaction([['upsert', toEntity(half), 'Replace'], ['create', guardEntity(half)]]);
      return undefined;
    } catch (error) {
      if (!isStorageStatus(error, 409)) throw error;
    }
    const holder = await this.guardHolder(half);
    if (holder !== undefined && holder !== half.connectionid) {
      const other = await this.read(half.record1id, holder);
      if (other && isActive(other.half)) return holder;
    }
    await this.put(half);
    return undefined;
  }

  /** Inserts the half unless it exists; returns whether it was written. */
  async insertIfAbsent(half: ConnectionHalf): Promise<boolean> {
    try {
      await this.insert(half);
      return true;
    } catch (error) {
      if (isStorageStatus(error, 409)) return false;
      throw error;
    }
  }

  /** Deletes a half and its guard; a half already gone is not an error. */
  async remove(half: ConnectionHalf): Promise<void> {
    try {
      if (isActive(half)) {
        await this.client.submitTransaction([['delete', toEntity(half)], ['delete', guardEntity(half)]]);
      } else {
        await this.client.deleteEntity(half.record1id, halfRowKey(half.connectionid));
      }
    } catch (error) {
      if (!isStorageStatus(error, 404)) throw error;
      // Part of it was gone already (a retried or concurrent delete): remove whatever is left.
      await Promise.all([
        this.deleteIgnoringMissing(half.record1id, halfRowKey(half.connectionid)),
        this.deleteIgnoringMissing(half.record1id, guardRowKey(half)),
      ]);
    }
  }

  /**
   * Deletes a half left behind by an interrupted delete. Its guard may by now belong to a newer
   * connection between the same records, so the guard goes only if it still names this half.
   */
  async removeOrphan(half: ConnectionHalf): Promise<void> {
    await this.deleteIgnoringMissing(half.record1id, halfRowKey(half.connectionid));
    if (!isActive(half)) return;
    try {
      const guard = await this.client.getEntity<{ connectionid: string }>(half.record1id, guardRowKey(half));
      if (guard.connectionid === half.connectionid) await this.client.deleteEntity(half.record1id, guardRowKey(half), { etag: guard.etag });
    } catch (error) {
      if (!isStorageStatus(error, 404) && !isStorageStatus(error, 412)) throw error;
    }
  }

  /** Deletes many halves of one partition, with their guards, in transactions of up to 100 entities. */
  async removeAllInPartition(halves: ConnectionHalf[]): Promise<void> {
    const entities = halves.flatMap((half) => (isActive(half) ? [toEntity(half), guardEntity(half)] : [toEntity(half)]));
    for (let start = 0; start < entities.length; start += 100) {
      const chunk = entities.slice(start, start + 100);
      try {
        await this.client.submitTransaction(chunk.map((entity): TransactionAction => ['delete', entity]));
      } catch (error) {
        if (!isStorageStatus(error, 404)) throw error;
        await Promise.all(chunk.map((entity) => this.deleteIgnoringMissing(entity.partitionKey, entity.rowKey)));
      }
    }
  }

  private async deleteIgnoringMissing(partitionKey: string, rowKey: string): Promise<void> {
    try {
      await this.client.deleteEntity(partitionKey, rowKey);
    } catch (error) {
      if (!isStorageStatus(error, 404)) throw error;
    }
  }

  /**
   * One page of a record's halves: a single partition range query, filtered in storage. Storage may
   * return an empty page with a continuation; those are followed so a caller never gets an empty page
   * that still claims more.
   */
  /** Up to `limit` of a record's halves after a row key: one partition range query, filtered in storage. */
  range(query: HalfQuery, limit: number, after?: string): Promise<Range<StoredHalf>> {
    return queryRange(this.client, halfFilter(query, after), limit, fromEntity);
  }

  count(query: HalfQuery, visible?: Visibility): Promise<number> {
    return countMatching(this.client, halfFilter(query), visible);
  }

  /** The role ids a record's (visible) halves give it, one entry per half that has one. */
  async rolesOf(recordId: string, visible?: Visibility): Promise<string[]> {
    const roles: string[] = [];
    await scanColumns(this.client, halfFilter({ recordId }), ['record1roleid'], visible, (entity) => {
      if (typeof entity.record1roleid === 'string') roles.push(entity.record1roleid);
    });
    return roles;
  }
}

function halfFilter(query: HalfQuery, after?: string): string {
  const parts = [
    after === undefined
      ? odata`PartitionKey eq ${query.recordId} and RowKey ge ${HALF_PREFIX} and RowKey lt ${HALF_RANGE_END}`
      : odata`PartitionKey eq ${query.recordId} and RowKey gt ${after} and RowKey lt ${HALF_RANGE_END}`,
  ];
  if (query.otherTypeCode !== undefined) parts.push(odata`record2objecttypecode eq ${query.otherTypeCode}`);
  if (query.otherRecordId !== undefined) parts.push(odata`record2id eq ${query.otherRecordId}`);
  if (query.roleId !== undefined) parts.push(odata`record1roleid eq ${query.roleId}`);
  if (query.otherRoleId !== undefined) parts.push(odata`record2roleid eq ${query.otherRoleId}`);
  if (query.statecode !== undefined) parts.push(odata`statecode eq ${query.statecode}`);
  if (query.activeOn !== undefined) parts.push(odata`windowstart le ${query.activeOn} and windowend ge ${query.activeOn}`);
  return parts.join(' and ');
}

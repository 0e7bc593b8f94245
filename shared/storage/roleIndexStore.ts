import type { ConnectionHalf } from '../connection';
import { type Copy, fencedPut, fromStored, type KnownVersion, type StoredCopy, toEntity } from './connectionStore';
import { countMatching, queryRange, type Range, type Visibility } from './paging';
import { isStorageStatus, queryAll, type TablePort, type TableQuery } from './tablePort';

/**
 * Inter-partition secondary index of connection halves by the role their record 1 plays:
 *   PartitionKey = role id
 *   RowKey = "<record 1 type code, 10 digits>_<record1id>_<connectionid>"
 * "Every record with role R" is one partition, "every contact with role R" a prefix range of it, so a
 * role query reads only the answer. Each entry is a full copy of its half, so answering needs no second
 * read. Entries are derived copies: written by version-fenced writes from the authoritative half, and
 * turned into tombstones (not deleted) when the half loses the role or the connection is deleted, so a
 * late write of an older version cannot bring an entry back.
 */
const TYPE_WIDTH = 10;
const typePrefix = (typeCode: number): string => String(typeCode).padStart(TYPE_WIDTH, '0');
export const indexRowKey = (half: Pick<ConnectionHalf, 'record1objecttypecode' | 'record1id' | 'connectionid'>): string =>
  `${typePrefix(half.record1objecttypecode)}_${half.record1id}_${half.connectionid}`;

export interface RoleQuery {
  roleId: string;
  typeCode?: number;
  statecode?: number;
}

function roleQuery(query: RoleQuery, after?: string): TableQuery {
  const rowKey = query.typeCode === undefined
    ? (after === undefined ? undefined : { gt: after })
    : { gt: after ?? `${typePrefix(query.typeCode)}_`, lt: `${typePrefix(query.typeCode)}\`` };
  return {
    partitionKey: query.roleId,
    ...(rowKey && { rowKey }),
    ...(query.statecode !== undefined && { where: [{ property: 'statecode', op: 'eq' as const, value: query.statecode }] }),
  };
}

export class RoleIndexStore {
  constructor(readonly table: TablePort) {}

  /**
   * Writes the entry of `copy.half` under `roleId` (the role its record 1 plays now, or played before:
   * then `copy` is a tombstone), version-fenced.
   */
  async put(roleId: string, copy: Copy, known?: KnownVersion | null): Promise<void> {
    await fencedPut(this.table, toEntity(copy, roleId, indexRowKey(copy.half)), known);
  }

  async read(roleId: string, half: Pick<ConnectionHalf, 'record1objecttypecode' | 'record1id' | 'connectionid'>): Promise<StoredCopy | undefined> {
    const stored = await this.table.get(roleId, indexRowKey(half));
    return stored && fromStored(stored);
  }

  /** Index entries (tombstones included) of a role query, after a row key. */
  range(query: RoleQuery, limit: number, after?: string): Promise<Range<StoredCopy>> {
    return queryRange(this.table, roleQuery(query, after), limit, fromStored);
  }

  count(query: RoleQuery, visible?: Visibility): Promise<number> {
    return countMatching(this.table, roleQuery(query), visible);
  }

  /** Whether any live connection still plays the role (tombstones do not count). */
  async inUse(roleId: string): Promise<boolean> {
    for await (const page of queryAll(this.table, { partitionKey: roleId, select: ['tombstone'] }, 100)) {
      if (page.some(({ entity }) => entity.tombstone !== true)) return true;
    }
    return false;
  }

  async deleteIfUnchanged(roleId: string, rowKey: string, etag: string): Promise<void> {
    try {
      await this.table.write({ op: 'delete', partitionKey: roleId, rowKey, etag });
    } catch (error) {
      if (!isStorageStatus(error, 404) && !isStorageStatus(error, 412)) throw error;
    }
  }
}

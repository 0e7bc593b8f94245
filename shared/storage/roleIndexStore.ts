import { odata, type TableClient } from '@azure/data-tables';
import type { ConnectionHalf } from '../connection';
import { type Entity, fromEntity, type StoredHalf, toEntity } from './connectionStore';
import { isStorageStatus } from './errors';
import { countMatching, queryRange, type Range, type Visibility } from './paging';

/**
 * Inter-partition secondary index of connection halves by the role their record 1 plays:
 *   PartitionKey = role id
 *   RowKey = "<record 1 type code, 10 digits>_<record1id>_<connectionid>"
 * "Every record with role R" is one partition, "every contact with role R" a prefix range of it, so a
 * role query reads only the answer. Each entry is a full copy of its half, so answering needs no second
 * read. Entries are derived from halves: removed before a half is deleted and written after it is, so
 * the index may lag behind its halves for a moment but never shows a connection that is gone.
 */
const TYPE_WIDTH = 10;
const typePrefix = (typeCode: number): string => String(typeCode).padStart(TYPE_WIDTH, '0');
export const indexRowKey = (half: ConnectionHalf): string => `${typePrefix(half.record1objecttypecode)}_${half.record1id}_${half.connectionid}`;

export interface RoleQuery {
  roleId: string;
  typeCode?: number;
  statecode?: number;
}

function roleFilter(query: RoleQuery, after?: string): string {
  const parts = [odata`PartitionKey eq ${query.roleId}`];
  if (query.typeCode !== undefined) {
    const prefix = `${typePrefix(query.typeCode)}_`;
    parts.push(odata`RowKey gt ${after ?? prefix} and RowKey lt ${`${typePrefix(query.typeCode)}\``}`);
  } else if (after !== undefined) {
    parts.push(odata`RowKey gt ${after}`);
  }
  if (query.statecode !== undefined) parts.push(odata`statecode eq ${query.statecode}`);
  return parts.join(' and ');
}

export class RoleIndexStore {
  constructor(readonly client: TableClient) {}

  private entryOf(half: ConnectionHalf & { record1roleid: string }): Entity {
    return { ...toEntity(half), partitionKey: half.record1roleid, rowKey: indexRowKey(half) };
  }

  /** Writes the entry of a half that has a record 1 role (nothing for one without). */
  async put(half: ConnectionHalf): Promise<void> {
    if (half.record1roleid === null) return;
    await this.client.upsertEntity(this.entryOf({ ...half, record1roleid: half.record1roleid }), 'Replace');
  }

  async remove(half: ConnectionHalf): Promise<void> {
    if (half.record1roleid === null) return;
    try {
      await this.client.deleteEntity(half.record1roleid, indexRowKey(half));
    } catch (error) {
      if (!isStorageStatus(error, 404)) throw error;
    }
  }

  range(query: RoleQuery, limit: number, after?: string): Promise<Range<StoredHalf>> {
    return queryRange(this.client, roleFilter(query, after), limit, fromEntity);
  }

  count(query: RoleQuery, visible?: Visibility): Promise<number> {
    return countMatching(this.client, roleFilter(query), visible);
  }

  /** Whether any connection still uses the role: one request for at most one key. */
  async inUse(roleId: string): Promise<boolean> {
    const page = await this.client
      .listEntities({ queryOptions: { filter: odata`PartitionKey eq ${roleId}`, select: ['RowKey'] } })
      .byPage({ maxPageSize: 1 })
      .next();
    return !page.done && page.value.length > 0;
  }
}

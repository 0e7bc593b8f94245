// Storage: the role index table's layout (entries by role, reservations) and its rows.
import { z } from 'zod';
import type { ConnectionHalf } from '../domain/connection';
import {
  type ClaimedSlot,
  type CopyRow,
  fromStored,
  insertOrReplace,
  readRowVersion,
  type RowVersion,
  type StoredCopyRow,
  toEntity,
} from './connectionStore';
import { countMatching, queryRange, type Range, type RowFilter } from './ranges';
import { isStorageStatus, queryAll, type TablePort, type TableQuery } from './tablePort';

/**
 * Inter-partition secondary index of connection halves by the role their record 1 plays:
 *   PartitionKey = role id
 *   RowKey = "<record 1 type code, 10 digits>_<record1id>_<connectionid>"
 * "Every record with role R" is one partition, "every contact with role R" a prefix range of it, so a
 * role query reads only the answer. Each entry is a full copy of its half, so answering needs no second
 * read. Entries are derived copies: the protocol writes them by version-fenced writes from the
 * authoritative half (protocol/copies.ts), and turns them into tombstones (not deleted) when the half loses
 * the role or the connection is deleted, so a late write of an older version cannot bring an entry back.
 */
const TYPE_WIDTH = 10;
// Entries' row keys start with a digit (the type code); reservations' with "r_", outside that range.
const ENTRY_RANGE = { ge: '0', lt: ':' };
const RESERVATION_PREFIX = 'r_';
export const isEntryRowKey = (rowKey: string): boolean => rowKey >= ENTRY_RANGE.ge && rowKey < ENTRY_RANGE.lt;
export const isReservationRowKey = (rowKey: string): boolean => rowKey.startsWith(RESERVATION_PREFIX);

/**
 * A reservation of a role by a connection about to commit with it (see protocol/reservations.ts): written in the role's
 * partition before the commit, so a role deletion that checks the partition afterwards sees it.
 *   RowKey "r_<record1id>_<connectionid>" of the connection's authoritative slot
 */
export interface Reservation {
  roleId: string;
  rowKey: string;
  etag: string;
  slot: ClaimedSlot;
  reservedon: string;
}

const reservationSchema = z.object({
  record1id: z.string(),
  connectionid: z.string(),
  record2id: z.string(),
  record1objecttypecode: z.number(),
  record2objecttypecode: z.number(),
  reservedon: z.string(),
});
const typePrefix = (typeCode: number): string => String(typeCode).padStart(TYPE_WIDTH, '0');
export const indexRowKey = (
  half: Pick<ConnectionHalf, 'record1objecttypecode' | 'record1id' | 'connectionid'>,
): string => `${typePrefix(half.record1objecttypecode)}_${half.record1id}_${half.connectionid}`;

export interface RoleQuery {
  roleId: string;
  typeCode?: number;
  statecode?: number;
}

function roleQuery(query: RoleQuery, after?: string): TableQuery {
  const rowKey =
    query.typeCode === undefined
      ? after === undefined
        ? ENTRY_RANGE
        : { gt: after, lt: ENTRY_RANGE.lt }
      : { gt: after ?? `${typePrefix(query.typeCode)}_`, lt: `${typePrefix(query.typeCode)}\`` };
  return {
    partitionKey: query.roleId,
    rowKey,
    ...(query.statecode !== undefined && {
      where: [{ property: 'statecode', op: 'eq' as const, value: query.statecode }],
    }),
  };
}

export class RoleIndexStore {
  constructor(readonly table: TablePort) {}

  /** The version of the entry of `half` under `roleId` (for a fenced write of it). */
  readVersion(
    roleId: string,
    half: Pick<ConnectionHalf, 'record1objecttypecode' | 'record1id' | 'connectionid'>,
  ): Promise<RowVersion | null> {
    return readRowVersion(this.table, roleId, indexRowKey(half));
  }

  /**
   * Writes the entry of `copy.half` under `roleId` (the role its record 1 plays now, or played before:
   * then `copy` is a tombstone): an insert (etag null) or a replace if unchanged since read.
   */
  async write(roleId: string, copy: CopyRow, etag: string | null): Promise<void> {
    await insertOrReplace(this.table, toEntity(copy, roleId, indexRowKey(copy.half)), etag);
  }

  async read(
    roleId: string,
    half: Pick<ConnectionHalf, 'record1objecttypecode' | 'record1id' | 'connectionid'>,
  ): Promise<StoredCopyRow | undefined> {
    const stored = await this.table.get(roleId, indexRowKey(half));
    return stored && fromStored(stored);
  }

  /** Index entries (tombstones included) of a role query, after a row key. */
  range(query: RoleQuery, limit: number, after?: string): Promise<Range<StoredCopyRow>> {
    return queryRange(this.table, roleQuery(query, after), limit, fromStored);
  }

  count(query: RoleQuery, visible?: RowFilter): Promise<number> {
    return countMatching(this.table, roleQuery(query), visible);
  }

  /** Whether any live entry is under the role (tombstones do not count). */
  async hasLiveEntry(roleId: string): Promise<boolean> {
    for await (const page of queryAll(
      this.table,
      { partitionKey: roleId, rowKey: ENTRY_RANGE, select: ['tombstone'] },
      100,
    )) {
      if (page.some(({ entity }) => entity.tombstone !== true)) return true;
    }
    return false;
  }

  /** Reserves a role for a connection's slot (an upsert: a retry reserves again). */
  async reserve(roleId: string, slot: ClaimedSlot, now: string): Promise<void> {
    const { record1id, connectionid, record2id, record1objecttypecode, record2objecttypecode } = slot;
    await this.table.write({
      op: 'upsert',
      entity: {
        partitionKey: roleId,
        rowKey: `${RESERVATION_PREFIX}${record1id}_${connectionid}`,
        record1id,
        connectionid,
        record2id,
        record1objecttypecode,
        record2objecttypecode,
        reservedon: now,
      },
    });
  }

  /** The reservations of a role: one range of its partition. */
  async reservations(roleId: string): Promise<Reservation[]> {
    const found: Reservation[] = [];
    for await (const page of queryAll(
      this.table,
      { partitionKey: roleId, rowKey: { ge: RESERVATION_PREFIX, lt: 'r`' } },
      100,
    )) {
      for (const stored of page) found.push(reservationOf(stored.entity, stored.etag));
    }
    return found;
  }

  async deleteIfUnchanged(roleId: string, rowKey: string, etag: string): Promise<void> {
    try {
      await this.table.write({ op: 'delete', partitionKey: roleId, rowKey, etag });
    } catch (error) {
      if (!isStorageStatus(error, 404) && !isStorageStatus(error, 412)) throw error;
    }
  }
}

export function reservationOf(
  entity: { partitionKey: string; rowKey: string } & Record<string, unknown>,
  etag: string,
): Reservation {
  const { reservedon, ...slot } = reservationSchema.parse(entity);
  return { roleId: entity.partitionKey, rowKey: entity.rowKey, etag, slot, reservedon };
}

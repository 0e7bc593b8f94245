import { z } from 'zod';
import type { ConnectionRole } from '../roles';
import { ANY_ETAG, isStorageStatus, queryAll, type TablePort, type TableEntity, type WriteOp } from './tablePort';

/**
 * Roles are few and read far more than written, so they share one partition: the whole catalog (roles
 * and matches) is a single partition query, and a match and its mirror are written in one transaction.
 *   PartitionKey "roles"
 *   RowKey "r_<roleid>"            a role
 *   RowKey "m_<roleid>_<otherid>"  "roleid matches otherid"; always written with its mirror
 */
const PARTITION = 'roles';
const ROLE_PREFIX = 'r_';
const MATCH_PREFIX = 'm_';

const roleKey = (id: string): string => `${ROLE_PREFIX}${id}`;
const matchKey = (a: string, b: string): string => `${MATCH_PREFIX}${a}_${b}`;

const storedRoleSchema = z.object({
  connectionroleid: z.string(),
  name: z.string(),
  category: z.number(),
  description: z.string().nullish().transform((value) => value ?? null),
  statecode: z.union([z.literal(0), z.literal(1)]),
  statuscode: z.union([z.literal(1), z.literal(2)]),
  objecttypecodes: z.string().transform((value) => z.array(z.number()).parse(JSON.parse(value))),
  createdon: z.string(),
  createdby: z.string(),
  modifiedon: z.string(),
  modifiedby: z.string(),
  versionnumber: z.number(),
  deleting: z.string().optional(),
});

function toEntity(role: ConnectionRole, deleting?: string): TableEntity {
  const { description, objecttypecodes, ...rest } = role;
  return {
    partitionKey: PARTITION,
    rowKey: roleKey(role.connectionroleid),
    ...rest,
    ...(description !== null && { description }),
    ...(deleting !== undefined && { deleting }),
    // Arrays must be serialised; the list is short (at most 100 codes).
    objecttypecodes: JSON.stringify(objecttypecodes),
  };
}

const fromEntity = (entity: Record<string, unknown>): ConnectionRole => {
  const { deleting: _deleting, ...role } = storedRoleSchema.parse(entity);
  return role as ConnectionRole;
};

export interface StoredRole {
  role: ConnectionRole;
  etag: string;
  /** Set while a deletion checks that nothing uses the role (when it started): no connection may take it. */
  deleting?: string;
}

export class RoleStore {
  constructor(readonly table: TablePort) {}

  /** Every role and match: one partition query (more pages only past 1,000 entities). */
  async loadAll(): Promise<{ roles: ConnectionRole[]; matches: [string, string][] }> {
    const roles: ConnectionRole[] = [];
    const matches: [string, string][] = [];
    for await (const page of queryAll(this.table, { partitionKey: PARTITION })) {
      for (const { entity } of page) {
        const rowKey = entity.rowKey;
        if (rowKey.startsWith(ROLE_PREFIX)) roles.push(fromEntity(entity));
        else if (rowKey.startsWith(MATCH_PREFIX)) {
          const [a, b] = rowKey.slice(MATCH_PREFIX.length).split('_');
          if (a && b) matches.push([a, b]);
        }
      }
    }
    return { roles, matches };
  }

  async read(id: string): Promise<StoredRole | undefined> {
    const stored = await this.table.get(PARTITION, roleKey(id));
    if (!stored) return undefined;
    const deleting = stored.entity.deleting;
    return { role: fromEntity(stored.entity), etag: stored.etag, ...(typeof deleting === 'string' && { deleting }) };
  }

  /** Throws a 409 RestError when the id is taken. */
  async insert(role: ConnectionRole): Promise<void> {
    await this.table.write({ op: 'insert', entity: toEntity(role) });
  }

  /**
   * Throws a 412 RestError when the role changed since `etag`. `deleting` marks it as being deleted;
   * any other replace clears the mark (so a deletion that set it must look again).
   */
  async replace(role: ConnectionRole, etag: string, deleting?: string): Promise<string> {
    return this.table.write({ op: 'replace', entity: toEntity(role, deleting), etag });
  }

  async delete(id: string, etag: string): Promise<void> {
    await this.table.write({ op: 'delete', partitionKey: PARTITION, rowKey: roleKey(id), etag });
  }

  /** Ids matched by a role: a prefix range of one partition. */
  async matchesOf(id: string): Promise<string[]> {
    const prefix = `${MATCH_PREFIX}${id}_`;
    const ids: string[] = [];
    for await (const page of queryAll(this.table, { partitionKey: PARTITION, rowKey: { gt: prefix, lt: `${prefix}~` }, select: [] })) {
      for (const { entity } of page) ids.push(entity.rowKey.slice(prefix.length));
    }
    return ids;
  }

  /** Records "a matches b" and "b matches a" together (one entity when a role matches itself). */
  async putMatch(a: string, b: string): Promise<void> {
    const keys = a === b ? [matchKey(a, a)] : [matchKey(a, b), matchKey(b, a)];
    await this.table.batch(keys.map((rowKey): WriteOp => ({ op: 'upsert', entity: { partitionKey: PARTITION, rowKey } })));
  }

  /** Removes the match both ways; returns false when there was none. */
  async deleteMatch(a: string, b: string): Promise<boolean> {
    const keys = a === b ? [matchKey(a, a)] : [matchKey(a, b), matchKey(b, a)];
    try {
      await this.table.batch(keys.map((rowKey): WriteOp => ({ op: 'delete', partitionKey: PARTITION, rowKey, etag: ANY_ETAG })));
      return true;
    } catch (error) {
      if (!isStorageStatus(error, 404)) throw error;
      // Half a pair (left by an older failure) or nothing: remove whatever is there.
      const results = await Promise.all(keys.map((rowKey) => this.table.write({ op: 'delete', partitionKey: PARTITION, rowKey, etag: ANY_ETAG }).then(() => true, (failure: unknown) => {
        if (isStorageStatus(failure, 404)) return false;
        throw failure;
      })));
      return results.some(Boolean);
    }
  }
}

// Storage: the roles table's layout (roles, matching roles, the deletion mark) and its rows.
import { z } from 'zod';
import type { ConnectionRole } from '../domain/roles';
import {
  ANY_ETAG,
  isStorageStatus,
  queryAll,
  type Stored,
  type TablePort,
  type TableEntity,
  type WriteOp,
} from './tablePort';

/**
 * Roles are few and read far more than written, so they share one partition: the whole catalog (roles
 * and matches) is a single partition query, and a match and its mirror are written in one transaction.
 *   PartitionKey "roles"
 *   RowKey "r_<roleid>"            a role
 *   RowKey "m_<roleid>_<otherid>"  "roleid matches otherid"; always written with its mirror
 *   RowKey "x_<roleid>"            the role's write token: every write of the role or of its matches
 *                                  rewrites it in the same transaction, so one ETag orders them all
 *                                  (a delete inside a transaction cannot be conditional, a replace can)
 */
const PARTITION = 'roles';
const ROLE_PREFIX = 'r_';
const MATCH_PREFIX = 'm_';

const roleKey = (id: string): string => `${ROLE_PREFIX}${id}`;
const tokenKey = (id: string): string => `x_${id}`;
/** Rewrites a role's write token (see above); `token` says who, for a writer that reads it back. */
const touch = (id: string, token = ''): WriteOp => ({
  op: 'upsert',
  entity: { partitionKey: PARTITION, rowKey: tokenKey(id), token },
});
const MAX_BATCH = 100;
const matchKey = (a: string, b: string): string => `${MATCH_PREFIX}${a}_${b}`;

const storedRoleSchema = z.object({
  connectionroleid: z.string(),
  name: z.string(),
  category: z.number(),
  description: z
    .string()
    .nullish()
    .transform((value) => value ?? null),
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
  /** The role row's ETag. */
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
    await this.table.batch([{ op: 'insert', entity: toEntity(role) }, touch(role.connectionroleid)]);
  }

  /** Throws a 412 RestError when the role changed since `etag`; clears a deletion's mark. */
  async replace(role: ConnectionRole, etag: string): Promise<void> {
    await this.table.batch([{ op: 'replace', entity: toEntity(role), etag }, touch(role.connectionroleid)]);
  }

  /**
   * Marks a role as being deleted, if unchanged since `etag`; returns the ETag of its write token as this
   * mark left it (undefined when another write came in between), which the deletion's last step needs.
   */
  async mark(role: ConnectionRole, etag: string, deleting: string, token: string): Promise<string | undefined> {
    await this.table.batch([
      { op: 'replace', entity: toEntity(role, deleting), etag },
      touch(role.connectionroleid, token),
    ]);
    const written = await this.table.get(PARTITION, tokenKey(role.connectionroleid));
    return written?.entity.token === token ? written.etag : undefined;
  }

  /** Removes a deletion's mark, if nothing wrote the role or its matches since (`tokenEtag`). */
  async unmark(role: ConnectionRole, tokenEtag: string): Promise<void> {
    await this.table.batch([
      { op: 'replace', entity: toEntity(role), etag: ANY_ETAG },
      {
        op: 'replace',
        entity: { partitionKey: PARTITION, rowKey: tokenKey(role.connectionroleid), token: '' },
        etag: tokenEtag,
      },
    ]);
  }

  /**
   * Deletes a role and its matches (both ways) in one transaction, if nothing wrote the role or its
   * matches since `tokenEtag`: nothing of it is left behind, and a role created again with its id
   * starts without matches. Throws 412 (written since), or 404 (a match removed meanwhile, or the role
   * gone).
   */
  async deleteWithMatches(id: string, tokenEtag: string, matched: string[]): Promise<void> {
    const matchKeys = [...new Set(matched.flatMap((other) => [matchKey(id, other), matchKey(other, id)]))];
    const ops: WriteOp[] = matchKeys.map((rowKey) => ({
      op: 'delete',
      partitionKey: PARTITION,
      rowKey,
      etag: ANY_ETAG,
    }));
    // A transaction holds 100 operations: matches beyond that go first, on their own.
    while (ops.length > MAX_BATCH - 2) await this.table.batch(ops.splice(0, MAX_BATCH));
    await this.table.batch([
      { op: 'delete', partitionKey: PARTITION, rowKey: roleKey(id), etag: ANY_ETAG },
      { op: 'replace', entity: { partitionKey: PARTITION, rowKey: tokenKey(id), token: 'deleted' }, etag: tokenEtag },
      ...ops,
    ]);
  }

  /** The roles a deletion has marked, with the ETag of their write tokens (see mark). */
  async marked(): Promise<(StoredRole & { tokenEtag: string })[]> {
    const rows = new Map<string, Stored>();
    for await (const page of queryAll(this.table, { partitionKey: PARTITION, rowKey: { ge: ROLE_PREFIX, lt: 'y' } })) {
      for (const stored of page) rows.set(stored.entity.rowKey, stored);
    }
    const found: (StoredRole & { tokenEtag: string })[] = [];
    for (const [rowKey, { entity, etag }] of rows) {
      const token = rows.get(tokenKey(rowKey.slice(ROLE_PREFIX.length)));
      if (rowKey.startsWith(ROLE_PREFIX) && typeof entity.deleting === 'string' && token) {
        found.push({ role: fromEntity(entity), etag, deleting: entity.deleting, tokenEtag: token.etag });
      }
    }
    return found;
  }

  /** Ids matched by a role: a prefix range of one partition. */
  async matchesOf(id: string): Promise<string[]> {
    const prefix = `${MATCH_PREFIX}${id}_`;
    const ids: string[] = [];
    for await (const page of queryAll(this.table, {
      partitionKey: PARTITION,
      rowKey: { gt: prefix, lt: `${prefix}~` },
      select: [],
    })) {
      for (const { entity } of page) ids.push(entity.rowKey.slice(prefix.length));
    }
    return ids;
  }

  /** Records "a matches b" and "b matches a" together (one entity when a role matches itself). */
  async putMatch(a: string, b: string): Promise<void> {
    const keys = a === b ? [matchKey(a, a)] : [matchKey(a, b), matchKey(b, a)];
    await this.table.batch([
      ...keys.map((rowKey): WriteOp => ({ op: 'upsert', entity: { partitionKey: PARTITION, rowKey } })),
      ...touches(a, b),
    ]);
  }

  /** Removes the match both ways; returns false when there was none. */
  async deleteMatch(a: string, b: string): Promise<boolean> {
    const keys = a === b ? [matchKey(a, a)] : [matchKey(a, b), matchKey(b, a)];
    try {
      await this.table.batch([
        ...keys.map((rowKey): WriteOp => ({ op: 'delete', partitionKey: PARTITION, rowKey, etag: ANY_ETAG })),
        ...touches(a, b),
      ]);
      return true;
    } catch (error) {
      if (!isStorageStatus(error, 404)) throw error;
      await this.table.batch(touches(a, b));
      // Half a pair (left by an older failure) or nothing: remove whatever is there.
      const results = await Promise.all(
        keys.map((rowKey) =>
          this.table.write({ op: 'delete', partitionKey: PARTITION, rowKey, etag: ANY_ETAG }).then(
            () => true,
            (failure: unknown) => {
              if (isStorageStatus(failure, 404)) return false;
              throw failure;
            },
          ),
        ),
      );
      return results.some(Boolean);
    }
  }
}

const touches = (a: string, b: string): WriteOp[] => (a === b ? [touch(a)] : [touch(a), touch(b)]);

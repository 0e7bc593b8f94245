import type { Caller } from './caller';
import type { ConnectionRoleService } from './connectionRoles';
import {
  applyUpdate,
  type ConnectionHalf,
  type CreateConnectionInput,
  etagOf,
  newMasterHalf,
  reciprocalOf,
  resolveObjectType,
  sameCreateRequest,
  type UpdateConnectionInput,
} from './connection';
import { conflict, notFound, preconditionFailed, unavailable } from './errors';
import type { ObjectTypeRegistry } from './objectTypes';
import { decodeStorageSkipToken, encodeSkipToken, queryFingerprint } from './paging';
import { checkRoles } from './roles';
import type { ConnectionStore, HalfQuery, StoredHalf } from './storage/connectionStore';
import type { Page } from './storage/paging';
import type { RoleIndexStore, RoleQuery } from './storage/roleIndexStore';
import { isStorageStatus } from './storage/errors';

/** An If-Match condition: any of these strong ETags, or "*" for "whatever exists". */
export type IfMatch = '*' | string[];

export interface ListQuery {
  recordId: string;
  othertypecode?: string | number;
  otherrecordid?: string;
  /** The record's own role (record1roleid of its halves). */
  roleid?: string;
  /** The other side's role (record2roleid of the record's halves). */
  otherroleid?: string;
  statecode?: number;
  activeon?: string;
}

export interface RoleQueryInput {
  roleid: string;
  /** The type of the record that plays the role. */
  typecode?: string | number;
  statecode?: number;
}

export interface ListOptions {
  top: number;
  skiptoken?: string;
  /** Also count every match (reads keys only, across all pages). */
  count?: boolean;
}

export interface ListResult {
  items: ConnectionHalf[];
  skiptoken?: string;
  count?: number;
}

export interface RecordRole {
  connectionroleid: string;
  name: string | null;
  count: number;
}

const MAX_ATTEMPTS = 3;
// Conditional writes that lose a race re-read and try again; many writers on one connection need more
// rounds, spread out by a random pause so they stop colliding.
const MAX_CONTENDED_ATTEMPTS = 20;
const pause = (attempt: number) => new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * (attempt + 1)));
const REMOTE_DELETE_CONCURRENCY = 16;
const CASCADE_PAGE_SIZE = 1000;

const notFoundError = () => notFound('No such connection for this record.', 'ConnectionNotFound');

const connectionExists = (existingId: string) =>
  conflict('ConnectionExists', `An active connection between these records with these roles already exists: ${existingId}.`, {
    existingconnectionid: existingId,
  });

function checkIfMatch(ifMatch: IfMatch | undefined, half: ConnectionHalf): void {
  if (ifMatch === undefined || ifMatch === '*') return;
  if (!ifMatch.includes(etagOf(half))) {
    throw preconditionFailed('The connection has changed since it was read (If-Match does not match its ETag): read it again.');
  }
}

/**
 * Connections as pairs of halves. The master half is the source of truth and is always written first;
 * its twin is derived from it. Order of writes, so that a crash leaves a state read as one thing only:
 * create and update write the master, then the twin; delete removes the master, then the twin. A lone
 * master is therefore an unfinished create (its twin is due), a lone twin an unfinished delete.
 */
export class ConnectionService {
  constructor(
    private readonly store: ConnectionStore,
    private readonly index: RoleIndexStore,
    private readonly roles: ConnectionRoleService,
    private readonly types: ObjectTypeRegistry,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** Applies Dataverse's role rules to a half's roles (and fills record 2's role where they say so). */
  private async withCheckedRoles(half: ConnectionHalf, fillRecord2: boolean): Promise<ConnectionHalf> {
    if (half.record1roleid === null && half.record2roleid === null) return half;
    const catalog = await this.roles.catalog();
    const type1 = resolveObjectType(this.types, half.record1objecttypecode, 'record1objecttypecode');
    const type2 = resolveObjectType(this.types, half.record2objecttypecode, 'record2objecttypecode');
    return { ...half, ...checkRoles(catalog, half, type1, type2, fillRecord2) };
  }

  /**
   * Roles are checked when a request sets them (a role deactivated later does not freeze the connections
   * that have it). A new record 1 role alone keeps record 2's role if the two match, and otherwise
   * takes record 2's role from the matching roles as a create would.
   */
  private async withUpdatedRoles(updated: ConnectionHalf, patch: UpdateConnectionInput): Promise<ConnectionHalf> {
    if (patch.record1roleid === undefined && patch.record2roleid === undefined) return updated;
    const onlyRecord1 = patch.record1roleid !== undefined && patch.record2roleid === undefined;
    let candidate = updated;
    if (onlyRecord1 && updated.record1roleid !== null && updated.record2roleid !== null) {
      const catalog = await this.roles.catalog();
      if (!catalog.match(updated.record1roleid, updated.record2roleid)) candidate = { ...updated, record2roleid: null };
    }
    return this.withCheckedRoles(candidate, onlyRecord1 && candidate.record2roleid === null);
  }

  /** Index entries of both halves of a pair (nothing for halves without a role). */
  private indexPair(master: ConnectionHalf): Promise<void[]> {
    return Promise.all([this.index.put(master), this.index.put(reciprocalOf(master))]);
  }

  private unindexPair(master: ConnectionHalf): Promise<void[]> {
    return Promise.all([this.index.remove(master), this.index.remove(reciprocalOf(master))]);
  }

  async create(input: CreateConnectionInput, caller: Caller): Promise<{ half: ConnectionHalf; created: boolean }> {
    const draft = newMasterHalf(input, this.types, caller, this.clock());
    const master = await this.withCheckedRoles(draft, draft.record2roleid === null);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      try {
        await this.store.insert(master);
      } catch (error) {
        if (!isStorageStatus(error, 409)) throw error;
        const [existing, holder] = await Promise.all([
          this.store.read(master.record1id, master.connectionid),
          this.store.guardHolder(master),
        ]);
        if (existing) {
          if (!sameCreateRequest(existing.half, master)) {
            throw conflict('DuplicateRecord', `A different connection with id ${master.connectionid} already exists.`, {
              connectionid: master.connectionid,
            });
          }
          // A repeated create: finish the pair if the first attempt stopped halfway, and answer as before.
          await this.store.insertIfAbsent(reciprocalOf(existing.half));
          await this.indexPair(existing.half);
          return { half: existing.half, created: false };
        }
        if (holder) throw connectionExists(holder);
        continue; // whatever conflicted is gone again: try once more
      }
      // The twin is derived from a master that was just written, so overwriting any leftover is right.
      await this.store.put(reciprocalOf(master));
      await this.indexPair(master);
      return { half: master, created: true };
    }
    throw unavailable('The connection could not be created because of concurrent changes; retry the request.', 1);
  }

  async get(recordId: string, connectionId: string): Promise<ConnectionHalf> {
    const stored = await this.store.read(recordId, connectionId);
    if (!stored) throw notFoundError();
    return stored.half;
  }

  /** Updates both halves; returns the half the URL named. */
  async update(recordId: string, connectionId: string, patch: UpdateConnectionInput, caller: Caller, ifMatch?: IfMatch): Promise<ConnectionHalf> {
    for (let attempt = 0; attempt < MAX_CONTENDED_ATTEMPTS; attempt++) {
      const { target, master } = await this.readPair(recordId, connectionId);
      checkIfMatch(ifMatch, master.half);
      const next = await this.withUpdatedRoles(applyUpdate(master.half, patch, caller, this.clock()), patch);
      try {
        await this.store.replace(next, master);
      } catch (error) {
        if (isStorageStatus(error, 412)) {
          if (ifMatch !== undefined) throw preconditionFailed('The connection was changed by another request while this one ran: read it again.');
          await pause(attempt);
          continue; // no precondition from the client: apply the patch to the newer version
        }
        if (isStorageStatus(error, 409)) {
          throw connectionExists((await this.store.guardHolder(next)) ?? 'unknown');
        }
        throw error;
      }
      if (next.record1roleid !== master.half.record1roleid || next.record2roleid !== master.half.record2roleid) {
        await this.unindexPair(master.half);
      }
      await this.syncTwin(next, target.half.ismaster ? undefined : target);
      await this.indexPair(next);
      return target.half.ismaster ? next : reciprocalOf(next);
    }
    throw unavailable('The connection is being changed by many requests at once; retry the request.', 1);
  }

  async delete(recordId: string, connectionId: string, ifMatch?: IfMatch): Promise<void> {
    const { target, master } = await this.readPair(recordId, connectionId);
    checkIfMatch(ifMatch, master.half);
    await this.unindexPair(master.half);
    await this.store.remove(master.half);
    await this.store.remove(target.half.ismaster ? reciprocalOf(master.half) : target.half);
  }

  async list(query: ListQuery, options: ListOptions): Promise<ListResult> {
    const halfQuery: HalfQuery = {
      recordId: query.recordId,
      ...(query.othertypecode !== undefined && {
        otherTypeCode: resolveObjectType(this.types, query.othertypecode, 'othertypecode').code,
      }),
      ...(query.otherrecordid !== undefined && { otherRecordId: query.otherrecordid }),
      ...(query.roleid !== undefined && { roleId: query.roleid }),
      ...(query.otherroleid !== undefined && { otherRoleId: query.otherroleid }),
      ...(query.statecode !== undefined && { statecode: query.statecode }),
      ...(query.activeon !== undefined && { activeOn: query.activeon }),
    };
    return this.paged(query.recordId, halfQuery, options, (token) => this.store.page(halfQuery, options.top, token), () => this.store.count(halfQuery));
  }

  /** Every half whose record plays a role, optionally only records of one type: reads only the answer. */
  async listByRole(query: RoleQueryInput, options: ListOptions): Promise<ListResult> {
    const roleQuery: RoleQuery = {
      roleId: query.roleid,
      ...(query.typecode !== undefined && { typeCode: resolveObjectType(this.types, query.typecode, 'typecode').code }),
      ...(query.statecode !== undefined && { statecode: query.statecode }),
    };
    return this.paged(query.roleid, roleQuery, options, (token) => this.index.page(roleQuery, options.top, token), () => this.index.count(roleQuery));
  }

  private async paged(
    scope: string,
    query: object,
    options: ListOptions,
    page: (continuationToken?: string) => Promise<Page<StoredHalf>>,
    count: () => Promise<number>,
  ): Promise<ListResult> {
    const fingerprint = queryFingerprint(query);
    const continuation = options.skiptoken === undefined ? undefined : decodeStorageSkipToken(options.skiptoken, scope, fingerprint);
    const [result, total] = await Promise.all([page(continuation), options.count ? count() : undefined]);
    return {
      items: result.items.map((stored) => stored.half),
      ...(result.continuationToken && { skiptoken: encodeSkipToken(result.continuationToken, scope, fingerprint) }),
      ...(total !== undefined && { count: total }),
    };
  }

  /** The distinct roles a record plays in its connections, with how many connections each. */
  async rolesOf(recordId: string): Promise<RecordRole[]> {
    const counts = new Map<string, number>();
    for (const roleId of await this.store.rolesOf(recordId)) counts.set(roleId, (counts.get(roleId) ?? 0) + 1);
    const catalog = await this.roles.catalog();
    return [...counts]
      .map(([connectionroleid, count]) => ({ connectionroleid, name: catalog.get(connectionroleid)?.name ?? null, count }))
      .sort((a, b) => (a.name ?? '').localeCompare(b.name ?? '') || a.connectionroleid.localeCompare(b.connectionroleid));
  }

  /**
   * Deletes every connection of a record, both halves of each, a page at a time, keeping the rule
   * "masters before twins" so an interruption leaves only lone twins, which read as deletes to finish.
   */
  async deleteAllOf(recordId: string): Promise<number> {
    let deleted = 0;
    for (;;) {
      // Deleted rows vanish from the range, so every round starts again at its beginning.
      const page = await this.store.page({ recordId }, CASCADE_PAGE_SIZE);
      const halves = page.items.map((stored) => stored.half);
      if (halves.length === 0) return deleted;
      const localMasters = halves.filter((half) => half.ismaster);
      const localTwins = halves.filter((half) => !half.ismaster);
      await forEachLimited(halves, REMOTE_DELETE_CONCURRENCY, async (half) => {
        await this.unindexPair(half);
      });
      await Promise.all([
        this.store.removeAllInPartition(localMasters),
        forEachLimited(localTwins, REMOTE_DELETE_CONCURRENCY, (twin) => this.store.remove(reciprocalOf(twin))),
      ]);
      await Promise.all([
        forEachLimited(localMasters, REMOTE_DELETE_CONCURRENCY, (master) => this.store.remove(reciprocalOf(master))),
        this.store.removeAllInPartition(localTwins),
      ]);
      deleted += halves.length;
    }
  }

  /** The half the URL names and the master of its pair (the same when the URL names the master). */
  private async readPair(recordId: string, connectionId: string): Promise<{ target: StoredHalf; master: StoredHalf }> {
    const target = await this.store.read(recordId, connectionId);
    if (!target) throw notFoundError();
    if (target.half.ismaster) return { target, master: target };
    const master = await this.store.read(target.half.record2id, target.half.relatedconnectionid);
    if (!master) {
      // A lone twin is what an interrupted delete leaves: finish the delete.
      await this.store.remove(target.half);
      throw notFoundError();
    }
    return { target, master };
  }

  /**
   * Brings the twin to the master's version. Conditional on the twin's ETag, so a slower writer of an
   * older version can never overwrite a newer one: on a clash it re-reads and stops if it is behind.
   */
  private async syncTwin(master: ConnectionHalf, knownTwin?: StoredHalf): Promise<void> {
    const wanted = reciprocalOf(master);
    let twin = knownTwin;
    for (let attempt = 0; attempt < MAX_CONTENDED_ATTEMPTS; attempt++) {
      twin ??= await this.store.read(wanted.record1id, wanted.connectionid);
      if (!twin) {
        await this.store.put(wanted);
        return;
      }
      if (twin.half.versionnumber >= wanted.versionnumber) return;
      try {
        await this.store.replace(wanted, twin);
        return;
      } catch (error) {
        if (isStorageStatus(error, 409)) {
          // The twin's guard was left behind by an earlier failure: take it over.
          await this.store.put(wanted);
          return;
        }
        if (!isStorageStatus(error, 412)) throw error;
        twin = undefined;
        await pause(attempt);
      }
    }
    throw unavailable('The connection was changed by many requests at once; retry the request.', 1);
  }
}

async function forEachLimited<T>(items: T[], limit: number, action: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await action(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

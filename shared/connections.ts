import {
  canRead,
  type EffectiveAccess,
  effectiveAccess,
  grant,
  type GrantAccessInput,
  modify,
  type ModifyAccessInput,
  requireGrantable,
  requireRights,
  revoke,
  type Share,
} from './access';
import type { Caller } from './caller';
import { forEachLimited } from './concurrency';
import type { ConnectionRoleService } from './connectionRoles';
import {
  applyUpdate,
  touched,
  type ConnectionHalf,
  type CreateConnectionInput,
  etagOf,
  isRepeatedDeactivation,
  newMasterHalf,
  reciprocalOf,
  resolveObjectType,
  sameCreateRequest,
  type UpdateConnectionInput,
} from './connection';
import { conflict, forbidden, notFound, preconditionFailed, unavailable } from './errors';
import type { ObjectTypeRegistry } from './objectTypes';
import { decodeSkipToken, encodeSkipToken, queryFingerprint } from './paging';
import { checkRoles } from './roles';
import type { ConnectionStore, HalfQuery, StoredHalf } from './storage/connectionStore';
import type { Range } from './storage/paging';
import type { RoleIndexStore, RoleQuery } from './storage/roleIndexStore';
import { isStorageStatus } from './storage/errors';

/** An If-Match condition: a list of strong ETags (one must match), or "*" for "whatever exists". */
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
const HIDDEN_ROWS_BATCH = 100;
const MAX_SCAN_ROUNDS = 10;

function shareOf(half: ConnectionHalf, principalId: string): Share {
  const share = half.shares.find((candidate) => candidate.principalid === principalId);
  if (!share) throw notFound('This principal has no share on the connection.', 'ShareNotFound');
  return share;
}

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
          // A caller who may not read the existing connection does not get it back, even for the same body.
          if (!sameCreateRequest(existing.half, master) || !canRead(caller, existing.half)) {
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
      // The twin is derived from a master that was just written, so overwriting a leftover twin is right;
      // but the other side's guard may show the same connection was made from there: then undo.
      const rival = await this.store.putTwin(reciprocalOf(master));
      if (rival !== undefined) {
        await this.store.remove(master);
        throw connectionExists(rival);
      }
      await this.indexPair(master);
      return { half: master, created: true };
    }
    throw unavailable('The connection could not be created because of concurrent changes; retry the request.', 1);
  }

  async get(recordId: string, connectionId: string, caller: Caller): Promise<ConnectionHalf> {
    const stored = await this.store.read(recordId, connectionId);
    if (!stored) throw notFoundError();
    requireRights(caller, stored.half);
    return stored.half;
  }

  /**
   * Updates both halves; returns the half the URL named. Changing fields needs WriteAccess, assigning a
   * new owner AssignAccess (a PATCH of ownerid alone needs only that, as Dataverse's Assign does).
   */
  async update(recordId: string, connectionId: string, patch: UpdateConnectionInput, caller: Caller, ifMatch?: IfMatch): Promise<ConnectionHalf> {
    const { next, target } = await this.change(recordId, connectionId, ifMatch, async (master) => {
      const assigns = patch.ownerid !== undefined && patch.ownerid !== master.ownerid;
      const writes = Object.keys(patch).some((field) => field !== 'ownerid');
      requireRights(caller, master, ...(writes ? (['WriteAccess'] as const) : []), ...(assigns ? (['AssignAccess'] as const) : []));
      if (isRepeatedDeactivation(master, patch)) return undefined;
      return this.withUpdatedRoles(applyUpdate(master, patch, caller, this.clock()), patch);
    });
    return target.half.ismaster ? next : reciprocalOf(next);
  }

  async delete(recordId: string, connectionId: string, caller: Caller, ifMatch?: IfMatch): Promise<void> {
    const { target, master } = await this.readPair(recordId, connectionId);
    requireRights(caller, master.half, 'DeleteAccess');
    checkIfMatch(ifMatch, master.half);
    await this.unindexPair(master.half);
    await this.store.remove(master.half);
    await this.store.remove(target.half.ismaster ? reciprocalOf(master.half) : target.half);
  }

  /** GrantAccess: adds rights to a principal's share (needs ShareAccess, and only rights the caller holds). */
  async grantAccess(recordId: string, connectionId: string, caller: Caller, input: GrantAccessInput): Promise<Share> {
    const { next } = await this.change(recordId, connectionId, undefined, async (master) => {
      requireGrantable(requireRights(caller, master, 'ShareAccess'), input.accessmask);
      return touched({ ...master, shares: grant(master.shares, input) }, caller, this.clock());
    });
    return shareOf(next, input.principalid);
  }

  /** ModifyAccess: replaces a principal's rights; 404 when it has no share. */
  async modifyAccess(recordId: string, connectionId: string, caller: Caller, principalId: string, input: ModifyAccessInput): Promise<Share> {
    const { next } = await this.change(recordId, connectionId, undefined, async (master) => {
      requireGrantable(requireRights(caller, master, 'ShareAccess'), input.accessmask);
      return touched({ ...master, shares: modify(master.shares, principalId, input) }, caller, this.clock());
    });
    return shareOf(next, principalId);
  }

  /** RevokeAccess: removes a principal's share entirely; revoking what is not there changes nothing. */
  async revokeAccess(recordId: string, connectionId: string, caller: Caller, principalId: string): Promise<void> {
    await this.change(recordId, connectionId, undefined, async (master) => {
      requireRights(caller, master, 'ShareAccess');
      if (!master.shares.some((share) => share.principalid === principalId)) return undefined;
      return touched({ ...master, shares: revoke(master.shares, principalId) }, caller, this.clock());
    });
  }

  /** RetrieveSharedPrincipalsAndAccess: every share on the connection. */
  async sharedPrincipals(recordId: string, connectionId: string, caller: Caller): Promise<Share[]> {
    return (await this.get(recordId, connectionId, caller)).shares;
  }

  /**
   * RetrievePrincipalAccess: a principal's effective rights and where each comes from. For the caller
   * that includes its teams and administrator role; for anyone else, what the connection itself says
   * (its owner and the shares naming that principal), since their other memberships are not known here.
   */
  async principalAccess(recordId: string, connectionId: string, caller: Caller, principalId: string): Promise<EffectiveAccess> {
    const half = await this.get(recordId, connectionId, caller);
    const principal = principalId === caller.id ? caller : { id: principalId, teams: [principalId], isAdmin: false };
    return effectiveAccess(principal, half);
  }

  /**
   * The one way a connection changes: read the pair, authorise and compute the new master from the
   * current one, write it conditionally on its ETag (re-reading and recomputing when another request
   * won the race, unless the client pinned a version with If-Match), then bring twin and index along.
   * `mutate` returns undefined when there is nothing to change.
   */
  private async change(
    recordId: string,
    connectionId: string,
    ifMatch: IfMatch | undefined,
    mutate: (master: ConnectionHalf) => Promise<ConnectionHalf | undefined>,
  ): Promise<{ next: ConnectionHalf; target: StoredHalf }> {
    for (let attempt = 0; attempt < MAX_CONTENDED_ATTEMPTS; attempt++) {
      const { target, master } = await this.readPair(recordId, connectionId);
      const next = await mutate(master.half);
      checkIfMatch(ifMatch, master.half);
      if (next === undefined) return { next: master.half, target };
      try {
        await this.store.replace(next, master);
      } catch (error) {
        if (isStorageStatus(error, 412)) {
          if (ifMatch !== undefined) throw preconditionFailed('The connection was changed by another request while this one ran: read it again.');
          await pause(attempt);
          continue;
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
      return { next, target };
    }
    throw unavailable('The connection is being changed by many requests at once; retry the request.', 1);
  }

  async list(query: ListQuery, caller: Caller, options: ListOptions): Promise<ListResult> {
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
    return this.paged(query.recordId, halfQuery, caller, options,
      (limit, after) => this.store.range(halfQuery, limit, after),
      (visible) => this.store.count(halfQuery, visible));
  }

  /** Every half whose record plays a role, optionally only records of one type: reads only the answer. */
  async listByRole(query: RoleQueryInput, caller: Caller, options: ListOptions): Promise<ListResult> {
    const roleQuery: RoleQuery = {
      roleId: query.roleid,
      ...(query.typecode !== undefined && { typeCode: resolveObjectType(this.types, query.typecode, 'typecode').code }),
      ...(query.statecode !== undefined && { statecode: query.statecode }),
    };
    return this.paged(query.roleid, roleQuery, caller, options,
      (limit, after) => this.index.range(roleQuery, limit, after),
      (visible) => this.index.count(roleQuery, visible));
  }

  /**
   * One page of what the caller may read. Rows it may not read are skipped in memory (their owner and
   * shares travel with them, so no extra reads), and the position is the last row key looked at, so
   * the next page neither repeats nor skips anything however many rows were hidden.
   */
  private async paged(
    scope: string,
    query: object,
    caller: Caller,
    options: ListOptions,
    range: (limit: number, after?: string) => Promise<Range<StoredHalf>>,
    count: (visible?: (row: { ownerid: string; shares: Share[] }) => boolean) => Promise<number>,
  ): Promise<ListResult> {
    const fingerprint = queryFingerprint(query);
    const after = options.skiptoken === undefined ? undefined : decodeSkipToken(options.skiptoken, scope, fingerprint);
    const visible = caller.isAdmin ? undefined : (row: { ownerid: string; shares: Share[] }) => canRead(caller, row);
    const [page, total] = await Promise.all([
      this.visiblePage(options.top, after, visible, range),
      options.count ? count(visible) : undefined,
    ]);
    return {
      items: page.items,
      ...(page.after !== undefined && { skiptoken: encodeSkipToken(page.after, scope, fingerprint) }),
      ...(total !== undefined && { count: total }),
    };
  }

  private async visiblePage(
    top: number,
    after: string | undefined,
    visible: ((row: ConnectionHalf) => boolean) | undefined,
    range: (limit: number, after?: string) => Promise<Range<StoredHalf>>,
  ): Promise<{ items: ConnectionHalf[]; after?: string }> {
    // Where rows may be hidden, read in larger batches so a page still costs one request in the usual case.
    const batch = visible ? Math.max(top, HIDDEN_ROWS_BATCH) : top;
    const items: ConnectionHalf[] = [];
    let position = after;
    for (let round = 0; round < MAX_SCAN_ROUNDS; round++) {
      const rows = await range(batch, position);
      for (const [index, row] of rows.items.entries()) {
        position = row.key;
        if (visible && !visible(row.half)) continue;
        items.push(row.half);
        if (items.length === top) {
          const more = index < rows.items.length - 1 || rows.more;
          return { items, ...(more && { after: position }) };
        }
      }
      if (!rows.more) return { items };
      if (items.length > 0) return { items, after: position };
    }
    // Many hidden rows in a row: answer what was found; nextLink carries on from here.
    return { items, ...(position !== undefined && { after: position }) };
  }

  /** The distinct roles a record plays in its connections, with how many connections each. */
  async rolesOf(recordId: string, caller: Caller): Promise<RecordRole[]> {
    const counts = new Map<string, number>();
    const visible = caller.isAdmin ? undefined : (row: { ownerid: string; shares: Share[] }) => canRead(caller, row);
    for (const roleId of await this.store.rolesOf(recordId, visible)) counts.set(roleId, (counts.get(roleId) ?? 0) + 1);
    const catalog = await this.roles.catalog();
    return [...counts]
      .map(([connectionroleid, count]) => ({ connectionroleid, name: catalog.get(connectionroleid)?.name ?? null, count }))
      .sort((a, b) => (a.name ?? '').localeCompare(b.name ?? '') || a.connectionroleid.localeCompare(b.connectionroleid));
  }

  /**
   * Deletes every connection of a record, both halves of each, a page at a time, keeping the rule
   * "masters before twins" so an interruption leaves only lone twins, which read as deletes to finish.
   */
  async deleteAllOf(recordId: string, caller: Caller): Promise<number> {
    if (!caller.isAdmin) throw forbidden('Deleting all connections of a record is for administrators.', 'AccessDenied');
    let deleted = 0;
    for (;;) {
      // Deleted rows vanish from the range, so every round starts again at its beginning.
      const page = await this.store.range({ recordId }, CASCADE_PAGE_SIZE);
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
      await this.index.remove(target.half);
      await this.store.removeOrphan(target.half);
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

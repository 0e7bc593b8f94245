// Use cases: the queries on connections (a connection, its shares and access, its audit history, list pages, a record's roles).
import { canRead, type EffectiveAccess, effectiveAccess, requireRights, type Share } from '../domain/access';
import { type AuditRecord, seenFromOtherSide } from '../domain/audit';
import type { Caller } from '../domain/caller';
import { type ConnectionHalf, resolveObjectType } from '../domain/connection';
import { notFound } from '../domain/errors';
import type { ObjectTypeRegistry } from '../domain/objectTypes';
import type { ConnectionProtocol } from '../protocol/connectionProtocol';
import { isLive, type StoredCopy } from '../protocol/copies';
import { type ConnectionStore, type HalfQuery, incarnationAuditPrefix } from '../storage/connectionStore';
import type { Range } from '../storage/ranges';
import type { RoleIndexStore, RoleQuery } from '../storage/roleIndexStore';
import type { ConnectionRoleService } from './connectionRoles';
import { decodeSkipToken, encodeSkipToken, invalidToken, queryFingerprint } from './skipTokens';

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

const HIDDEN_ROWS_BATCH = 100;
const MAX_SCAN_ROUNDS = 10;

const notFoundError = () => notFound('No such connection for this record.', 'ConnectionNotFound');

/** Reads: straight from the stores (one range query a page), through the protocol only to locate a connection's authoritative copy. */
export class ConnectionQueries {
  constructor(
    private readonly protocol: ConnectionProtocol,
    private readonly store: ConnectionStore,
    private readonly index: RoleIndexStore,
    private readonly roles: ConnectionRoleService,
    private readonly types: ObjectTypeRegistry,
  ) {}

  async get(recordId: string, connectionId: string, caller: Caller): Promise<ConnectionHalf> {
    const stored = await this.store.read(recordId, connectionId);
    if (!stored || !isLive(stored)) throw notFoundError();
    requireRights(caller, stored.half);
    return stored.half;
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
  async principalAccess(
    recordId: string,
    connectionId: string,
    caller: Caller,
    principalId: string,
  ): Promise<EffectiveAccess> {
    const half = await this.get(recordId, connectionId, caller);
    const principal = principalId === caller.id ? caller : { id: principalId, teams: [principalId], isAdmin: false };
    return effectiveAccess(principal, half);
  }

  /**
   * The audit history of a connection, newest first, as the URL's record sees it (one range query of the
   * authoritative partition per page). Needs ReadAccess; a deleted connection's history stays readable
   * until the repair job purges it with its tombstone.
   */
  async history(
    recordId: string,
    connectionId: string,
    caller: Caller,
    options: { top: number; skiptoken?: string | undefined },
  ): Promise<{ items: AuditRecord[]; skiptoken?: string }> {
    const located = await this.protocol.locate(recordId, connectionId);
    if (!located) throw notFoundError();
    requireRights(caller, located.authoritative.half);
    const scope = `${recordId}/${connectionId}`;
    const fingerprint = queryFingerprint({ audit: connectionId });
    const after = options.skiptoken === undefined ? undefined : decodeSkipToken(options.skiptoken, scope, fingerprint);
    // A position outside this incarnation's records would start a range over others: never, even sealed.
    if (after !== undefined && !after.startsWith(incarnationAuditPrefix(located.authoritative.half)))
      throw invalidToken();
    const page = await this.store.auditRange(located.authoritative.half, options.top, after);
    const fromMaster = located.target.half.ismaster;
    const last = page.items.at(-1);
    return {
      items: page.items.map(({ record }) => (fromMaster ? record : seenFromOtherSide(record))),
      ...(page.more && last && { skiptoken: encodeSkipToken(last.key, scope, fingerprint) }),
    };
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
    return this.paged(
      query.recordId,
      halfQuery,
      caller,
      options,
      (limit, after) => this.store.range(halfQuery, limit, after),
      (visible) => this.store.count(halfQuery, visible),
    );
  }

  /** Every half whose record plays a role, optionally only records of one type: reads only the answer. */
  async listByRole(query: RoleQueryInput, caller: Caller, options: ListOptions): Promise<ListResult> {
    const roleQuery: RoleQuery = {
      roleId: query.roleid,
      ...(query.typecode !== undefined && { typeCode: resolveObjectType(this.types, query.typecode, 'typecode').code }),
      ...(query.statecode !== undefined && { statecode: query.statecode }),
    };
    return this.paged(
      query.roleid,
      roleQuery,
      caller,
      options,
      (limit, after) => this.index.range(roleQuery, limit, after),
      (visible) => this.index.count(roleQuery, visible),
    );
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
    range: (limit: number, after?: string) => Promise<Range<StoredCopy>>,
    count: (visible?: (row: { ownerid: string; shares: Share[] }) => boolean) => Promise<number>,
  ): Promise<ListResult> {
    const fingerprint = queryFingerprint(query);
    const after = options.skiptoken === undefined ? undefined : decodeSkipToken(options.skiptoken, scope, fingerprint);
    const visible = caller.isAdmin ? undefined : (row: { ownerid: string; shares: Share[] }) => canRead(caller, row);
    const [page, total] = await Promise.all([
      this.visiblePage(options.top, after, (row) => isLive(row) && (!visible || visible(row.half)), range),
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
    visible: (row: StoredCopy) => boolean,
    range: (limit: number, after?: string) => Promise<Range<StoredCopy>>,
  ): Promise<{ items: ConnectionHalf[]; after?: string }> {
    // Rows may be hidden (no access, tombstones): read in larger batches so a page still costs one
    // request in the usual case.
    const batch = Math.max(top, HIDDEN_ROWS_BATCH);
    const items: ConnectionHalf[] = [];
    let position = after;
    for (let round = 0; round < MAX_SCAN_ROUNDS; round++) {
      const rows = await range(batch, position);
      for (const [index, row] of rows.items.entries()) {
        position = row.key;
        if (!visible(row)) continue;
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
  async recordRoles(recordId: string, caller: Caller): Promise<RecordRole[]> {
    const counts = new Map<string, number>();
    const visible = caller.isAdmin ? undefined : (row: { ownerid: string; shares: Share[] }) => canRead(caller, row);
    for (const roleId of await this.store.roleIdsOfRecord(recordId, visible))
      counts.set(roleId, (counts.get(roleId) ?? 0) + 1);
    const catalog = await this.roles.catalog();
    return [...counts]
      .map(([connectionroleid, count]) => ({
        connectionroleid,
        name: catalog.get(connectionroleid)?.name ?? null,
        count,
      }))
      .sort(
        (a, b) => (a.name ?? '').localeCompare(b.name ?? '') || a.connectionroleid.localeCompare(b.connectionroleid),
      );
  }
}

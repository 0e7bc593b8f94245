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
} from '../domain/access';
import { type AuditRecord, seenFromOtherSide } from '../domain/audit';
import type { Caller } from '../domain/caller';
import { forEachLimited } from '../protocol/concurrency';
import type { ConnectionRoleService } from './connectionRoles';
import {
  applyUpdate,
  type ConnectionHalf,
  type CreateConnectionInput,
  isRepeatedDeactivation,
  newMasterHalf,
  reciprocalOf,
  resolveObjectType,
  sameContent,
  sameCreateRequest,
  touched,
  type UpdateConnectionInput,
} from '../domain/connection';
import { DomainError, forbidden, notFound } from '../domain/errors';
import type { ObjectTypeRegistry } from '../domain/objectTypes';
import { decodeSkipToken, encodeSkipToken, invalidToken, queryFingerprint } from './skipTokens';
import type { IfMatch } from '../domain/preconditions';
import type { ChangeRequest, ChangeResult, Decision } from '../protocol/change';
import { connectionExists, type PairTaken } from '../protocol/conflicts';
import type { ConnectionProtocol } from '../protocol/connectionProtocol';
import { fingerprintOf } from '../protocol/stamps';
import { checkRoles, type RoleCatalog } from '../domain/roles';
import { isLive, type StoredCopy } from '../protocol/copies';
import { type ConnectionStore, type HalfQuery, incarnationAuditPrefix } from '../storage/connectionStore';
import type { Range } from '../storage/ranges';
import type { RoleIndexStore, RoleQuery } from '../storage/roleIndexStore';


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

/**
 * The fingerprint of each kind of request (see protocol.ts, "recognised retries"): equal for the same
 * caller sending the same request to the same URL again, different for anything else.
 */
export const requestPrint = {
  create: (caller: Caller, input: CreateConnectionInput) => fingerprintOf(['create', caller.id, input]),
  update: (caller: Caller, recordId: string, connectionId: string, patch: UpdateConnectionInput, ifMatch?: IfMatch) =>
    fingerprintOf(['update', caller.id, recordId, connectionId, patch, ifMatch ?? null]),
  delete: (caller: Caller, recordId: string, connectionId: string, ifMatch?: IfMatch) =>
    fingerprintOf(['delete', caller.id, recordId, connectionId, ifMatch ?? null]),
  /** `request`: the operation and its arguments, e.g. ['grant', input]. */
  shares: (caller: Caller, recordId: string, connectionId: string, request: unknown[]) =>
    fingerprintOf([...request, caller.id, recordId, connectionId]),
};

/** An update's decision (pure): write the updated state unless it changes nothing. */
const decideUpdate = (current: ConnectionHalf, next: ConnectionHalf): Decision => (sameContent(next, current) ? { kind: 'keep' } : { kind: 'write', half: next });

/** The connection as the half a URL named sees it. */
const seenFrom = (target: StoredCopy, master: ConnectionHalf): ConnectionHalf => (target.half.ismaster ? master : reciprocalOf(master));

const hasRoles = (half: ConnectionHalf): boolean => half.record1roleid !== null || half.record2roleid !== null;

/** Applies Dataverse's role rules to a half's roles (and fills record 2's role where they say so); `catalog` is needed when it has roles. */
function checkedRoles(catalog: RoleCatalog | undefined, types: ObjectTypeRegistry, half: ConnectionHalf, fillRecord2: boolean): ConnectionHalf {
  if (!hasRoles(half) || !catalog) return half;
  const type1 = resolveObjectType(types, half.record1objecttypecode, 'record1objecttypecode');
  const type2 = resolveObjectType(types, half.record2objecttypecode, 'record2objecttypecode');
  return { ...half, ...checkRoles(catalog, half, type1, type2, fillRecord2) };
}

const setsRoles = (patch: UpdateConnectionInput): boolean => patch.record1roleid !== undefined || patch.record2roleid !== undefined;

/**
 * Roles are checked when a request sets them (a role deactivated later does not freeze the connections
 * that have it). A new record 1 role alone keeps record 2's role if the two match, and otherwise
 * takes record 2's role from the matching roles as a create would. Pure: the catalog is prefetched when
 * the patch sets roles and the updated half has any (see needsCatalog).
 */
function withUpdatedRoles(catalog: RoleCatalog | undefined, types: ObjectTypeRegistry, updated: ConnectionHalf, patch: UpdateConnectionInput): ConnectionHalf {
  if (!setsRoles(patch)) return updated;
  const onlyRecord1 = patch.record1roleid !== undefined && patch.record2roleid === undefined;
  let candidate = updated;
  if (onlyRecord1 && catalog && updated.record1roleid !== null && updated.record2roleid !== null) {
    if (!catalog.match(updated.record1roleid, updated.record2roleid)) candidate = { ...updated, record2roleid: null };
  }
  return checkedRoles(catalog, types, candidate, onlyRecord1 && candidate.record2roleid === null);
}

/** Whether deciding an update needs the role catalog: it sets roles, and the connection then has some. */
const needsCatalog = (updated: ConnectionHalf, patch: UpdateConnectionInput): boolean => setsRoles(patch) && hasRoles(updated);

/**
 * Connections: Dataverse's rules (roles, state, access) on top of the write protocol (shared/protocol/),
 * which keeps the copies of each connection consistent. Every change is a protocol round: the protocol
 * reads, this decides on the authoritative copy's state (loading the role catalog first when the
 * decision needs it), the protocol commits. Conflicts and repeats come back as data judged here.
 */
export class ConnectionService {
  constructor(
    private readonly protocol: ConnectionProtocol,
    private readonly store: ConnectionStore,
    private readonly index: RoleIndexStore,
    private readonly roles: ConnectionRoleService,
    private readonly types: ObjectTypeRegistry,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** The pair is taken: named to a caller who may read the connection holding it, not to anyone else. */
  private pairTaken(taken: PairTaken, caller: Caller): DomainError {
    return connectionExists({ id: taken.id, visible: canRead(caller, taken.holder) });
  }

  /**
   * Runs a change: the protocol reads, `decide` judges the current state (it may load what it needs
   * first, at the point the protocol has read), the protocol commits; a lost race is decided again.
   */
  private async change(recordId: string, connectionId: string, caller: Caller, request: ChangeRequest,
    decide: (current: ConnectionHalf) => Decision | Promise<Decision>): Promise<ChangeResult> {
    let step = await this.protocol.beginChange(recordId, connectionId, request);
    while (step.kind === 'decide') step = await this.protocol.commitChange(step.pending, await decide(step.current));
    if (step.kind === 'exists') throw this.pairTaken(step, caller);
    return step.result;
  }

  /** A new connection's roles checked (the catalog loaded first when it has any). */
  private async withCheckedRoles(draft: ConnectionHalf): Promise<ConnectionHalf> {
    const catalog = hasRoles(draft) ? await this.roles.catalog() : undefined;
    return checkedRoles(catalog, this.types, draft, draft.record2roleid === null);
  }

  async create(input: CreateConnectionInput, caller: Caller): Promise<{ half: ConnectionHalf; created: boolean }> {
    const draft = newMasterHalf(input, this.types, caller, this.clock());
    const master = await this.withCheckedRoles(draft);
    const outcome = await this.protocol.create(master, requestPrint.create(caller, input));
    if (outcome.kind === 'exists') throw this.pairTaken(outcome, caller);
    if (outcome.kind === 'judgeRepeat') {
      // A caller who may not read the existing connection does not get it back, even for the same body.
      if (!(sameCreateRequest(outcome.existing, master) && canRead(caller, outcome.existing))) throw outcome.refusal;
      const repeated = await this.protocol.finishRepeat(outcome.pending);
      return { half: repeated.master, created: repeated.created };
    }
    return { half: outcome.master, created: outcome.created };
  }

  async get(recordId: string, connectionId: string, caller: Caller): Promise<ConnectionHalf> {
    const stored = await this.store.read(recordId, connectionId);
    if (!stored || !isLive(stored)) throw notFoundError();
    requireRights(caller, stored.half);
    return stored.half;
  }

  /**
   * Updates the connection; returns the half the URL named. Changing fields needs WriteAccess, naming an
   * owner AssignAccess (a PATCH of ownerid alone needs only that, as Dataverse's Assign does). A PATCH
   * that changes nothing writes nothing, but still needs the rights for what it names.
   */
  async update(recordId: string, connectionId: string, patch: UpdateConnectionInput, caller: Caller, ifMatch?: IfMatch): Promise<ConnectionHalf> {
    const request = { fingerprint: requestPrint.update(caller, recordId, connectionId, patch, ifMatch), ifMatch };
    const { master, target } = await this.change(recordId, connectionId, caller, request, async (current) => {
      const writes = Object.keys(patch).some((field) => field !== 'ownerid');
      requireRights(caller, current, ...(writes ? (['WriteAccess'] as const) : []), ...(patch.ownerid !== undefined ? (['AssignAccess'] as const) : []));
      if (isRepeatedDeactivation(current, patch)) return { kind: 'keep' };
      const updated = applyUpdate(current, patch, caller, this.clock());
      const catalog = needsCatalog(updated, patch) ? await this.roles.catalog() : undefined;
      return decideUpdate(current, withUpdatedRoles(catalog, this.types, updated, patch));
    });
    return seenFrom(target, master);
  }

  /** Deletes the connection; returns its last state (the version its tombstone has), as the URL's half. */
  async delete(recordId: string, connectionId: string, caller: Caller, ifMatch?: IfMatch): Promise<ConnectionHalf> {
    const request = { fingerprint: requestPrint.delete(caller, recordId, connectionId, ifMatch), ifMatch };
    const { master, target } = await this.change(recordId, connectionId, caller, request, (current) => {
      requireRights(caller, current, 'DeleteAccess');
      return { kind: 'delete', half: touched(current, caller, this.clock()) };
    });
    return seenFrom(target, master);
  }

  /** A change of the shares: decided with ShareAccess, written only when the shares differ. */
  private async changeShares(
    recordId: string,
    connectionId: string,
    caller: Caller,
    request: unknown[],
    nextShares: (current: ConnectionHalf, access: EffectiveAccess) => Share[],
  ): Promise<ConnectionHalf> {
    const { master } = await this.change(recordId, connectionId, caller, { fingerprint: requestPrint.shares(caller, recordId, connectionId, request) }, (current) => {
      const shares = nextShares(current, requireRights(caller, current, 'ShareAccess'));
      if (JSON.stringify(shares) === JSON.stringify(current.shares)) return { kind: 'keep' };
      return { kind: 'write', half: touched({ ...current, shares }, caller, this.clock()) };
    });
    return master;
  }

  /** GrantAccess: adds rights to a principal's share (needs ShareAccess, and only rights the caller holds). */
  async grantAccess(recordId: string, connectionId: string, caller: Caller, input: GrantAccessInput): Promise<Share> {
    const master = await this.changeShares(recordId, connectionId, caller, ['grant', input], (current, access) => {
      requireGrantable(access, input.accessmask);
      return grant(current.shares, input);
    });
    return shareOf(master, input.principalid);
  }

  /** ModifyAccess: replaces a principal's rights; 404 when it has no share. */
  async modifyAccess(recordId: string, connectionId: string, caller: Caller, principalId: string, input: ModifyAccessInput): Promise<Share> {
    const master = await this.changeShares(recordId, connectionId, caller, ['modify', principalId, input], (current, access) => {
      requireGrantable(access, input.accessmask);
      return modify(current.shares, principalId, input);
    });
    return shareOf(master, principalId);
  }

  /** RevokeAccess: removes a principal's share entirely; revoking what is not there changes nothing. */
  async revokeAccess(recordId: string, connectionId: string, caller: Caller, principalId: string): Promise<ConnectionHalf> {
    return this.changeShares(recordId, connectionId, caller, ['revoke', principalId], (current) => revoke(current.shares, principalId));
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
   * The audit history of a connection, newest first, as the URL's record sees it (one range query of the
   * authoritative partition per page). Needs ReadAccess; a deleted connection's history stays readable
   * until the repair job purges it with its tombstone.
   */
  async history(recordId: string, connectionId: string, caller: Caller, options: { top: number; skiptoken?: string | undefined }): Promise<{ items: AuditRecord[]; skiptoken?: string }> {
    const located = await this.protocol.locate(recordId, connectionId);
    if (!located) throw notFoundError();
    requireRights(caller, located.authoritative.half);
    const scope = `${recordId}/${connectionId}`;
    const fingerprint = queryFingerprint({ audit: connectionId });
    const after = options.skiptoken === undefined ? undefined : decodeSkipToken(options.skiptoken, scope, fingerprint);
    // A position outside this incarnation's records would start a range over others: never, even sealed.
    if (after !== undefined && !after.startsWith(incarnationAuditPrefix(located.authoritative.half))) throw invalidToken();
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
   * Deletes every connection of a record through the same protocol as a single delete (so the other
   * halves and the index follow, and an interruption leaves nothing a retry or the repair job cannot
   * finish), a page at a time; connections deleted meanwhile by others are skipped.
   */
  async deleteAllOf(recordId: string, caller: Caller): Promise<number> {
    if (!caller.isAdmin) throw forbidden('Deleting all connections of a record is for administrators.', 'AccessDenied');
    let deleted = 0;
    let after: string | undefined;
    for (;;) {
      const page = await this.store.range({ recordId }, CASCADE_PAGE_SIZE, after);
      // Tombstones too: a delete (an earlier attempt of this cascade) may have stopped before its index
      // entries followed, and touching it finishes that before this cascade answers.
      await forEachLimited(page.items, REMOTE_DELETE_CONCURRENCY, async (stored) => {
        try {
          await this.delete(recordId, stored.half.connectionid, caller);
          if (isLive(stored)) deleted++;
        } catch (error) {
          if (!(error instanceof DomainError && error.kind === 'not-found')) throw error;
        }
      });
      after = page.items.at(-1)?.key;
      if (!page.more || after === undefined) return deleted;
    }
  }
}

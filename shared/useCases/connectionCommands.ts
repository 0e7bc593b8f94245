// Use cases: the commands on connections (create, update, delete, sharing): Dataverse's rules decided on the protocol's reads.
import {
  canRead,
  grant,
  type GrantAccessInput,
  modify,
  type ModifyAccessInput,
  requireGrantable,
  requireRights,
  revoke,
  type EffectiveAccess,
  type Share,
} from '../domain/access';
import type { Caller } from '../domain/caller';
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
import { type DomainError, notFound } from '../domain/errors';
import type { ObjectTypeRegistry } from '../domain/objectTypes';
import type { IfMatch } from '../domain/preconditions';
import { checkRoles, type RoleCatalog } from '../domain/roles';
import type { ChangeRequest, ChangeResult, Decision } from '../protocol/change';
import { connectionExists, type PairTaken } from '../protocol/conflicts';
import type { ConnectionProtocol } from '../protocol/connectionProtocol';
import type { StoredCopy } from '../protocol/copies';
import { fingerprintOf } from '../protocol/stamps';
import type { ConnectionRoleService } from './connectionRoles';

function shareOf(half: ConnectionHalf, principalId: string): Share {
  const share = half.shares.find((candidate) => candidate.principalid === principalId);
  if (!share) throw notFound('This principal has no share on the connection.', 'ShareNotFound');
  return share;
}

/**
 * The fingerprint of each kind of request (see protocol/connectionProtocol.ts, "recognised retries"): equal for the same
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
const decideUpdate = (current: ConnectionHalf, next: ConnectionHalf): Decision =>
  sameContent(next, current) ? { kind: 'keep' } : { kind: 'write', half: next };

/** The connection as the half a URL named sees it. */
const seenFrom = (target: StoredCopy, master: ConnectionHalf): ConnectionHalf =>
  target.half.ismaster ? master : reciprocalOf(master);

const hasRoles = (half: ConnectionHalf): boolean => half.record1roleid !== null || half.record2roleid !== null;

/** Applies Dataverse's role rules to a half's roles (and fills record 2's role where they say so); `catalog` is needed when it has roles. */
function checkedRoles(
  catalog: RoleCatalog | undefined,
  types: ObjectTypeRegistry,
  half: ConnectionHalf,
  fillRecord2: boolean,
): ConnectionHalf {
  if (!hasRoles(half) || !catalog) return half;
  const type1 = resolveObjectType(types, half.record1objecttypecode, 'record1objecttypecode');
  const type2 = resolveObjectType(types, half.record2objecttypecode, 'record2objecttypecode');
  return { ...half, ...checkRoles(catalog, half, type1, type2, fillRecord2) };
}

const setsRoles = (patch: UpdateConnectionInput): boolean =>
  patch.record1roleid !== undefined || patch.record2roleid !== undefined;

/**
 * Roles are checked when a request sets them (a role deactivated later does not freeze the connections
 * that have it). A new record 1 role alone keeps record 2's role if the two match, and otherwise
 * takes record 2's role from the matching roles as a create would. Pure: the catalog is prefetched when
 * the patch sets roles and the updated half holds at least one (see needsCatalog).
 */
function withUpdatedRoles(
  catalog: RoleCatalog | undefined,
  types: ObjectTypeRegistry,
  updated: ConnectionHalf,
  patch: UpdateConnectionInput,
): ConnectionHalf {
  if (!setsRoles(patch)) return updated;
  const onlyRecord1 = patch.record1roleid !== undefined && patch.record2roleid === undefined;
  let candidate = updated;
  if (onlyRecord1 && catalog && updated.record1roleid !== null && updated.record2roleid !== null) {
    if (!catalog.match(updated.record1roleid, updated.record2roleid)) candidate = { ...updated, record2roleid: null };
  }
  return checkedRoles(catalog, types, candidate, onlyRecord1 && candidate.record2roleid === null);
}

/** Whether deciding an update needs the role catalog: it sets roles, and the connection then has some. */
const needsCatalog = (updated: ConnectionHalf, patch: UpdateConnectionInput): boolean =>
  setsRoles(patch) && hasRoles(updated);

/**
 * Commands: Dataverse's rules (roles, state, access) on top of the write protocol (shared/protocol/),
 * which keeps the copies of each connection consistent. Every change is a protocol round: the protocol
 * reads, this decides on the authoritative copy's state (loading the role catalog first when the
 * decision needs it), the protocol commits. Conflicts and repeats come back as data judged here.
 */
export class ConnectionCommands {
  constructor(
    private readonly protocol: ConnectionProtocol,
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
  private async change(
    recordId: string,
    connectionId: string,
    caller: Caller,
    request: ChangeRequest,
    decide: (current: ConnectionHalf) => Decision | Promise<Decision>,
  ): Promise<ChangeResult> {
    let step = await this.protocol.beginChange(recordId, connectionId, request);
    while (step.kind === 'decide') step = await this.protocol.commitChange(step.pending, await decide(step.current));
    if (step.kind === 'exists') throw this.pairTaken(step, caller);
    return step.result;
  }

  /** A new connection's roles checked (the catalog loaded first when it holds at least one). */
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

  /**
   * Updates the connection; returns the half the URL named. Changing fields needs WriteAccess, naming an
   * owner AssignAccess (a PATCH of ownerid alone needs only that, as Dataverse's Assign does). A PATCH
   * that changes nothing writes nothing, but still needs the rights for what it names.
   */
  async update(
    recordId: string,
    connectionId: string,
    patch: UpdateConnectionInput,
    caller: Caller,
    ifMatch?: IfMatch,
  ): Promise<ConnectionHalf> {
    const request = { fingerprint: requestPrint.update(caller, recordId, connectionId, patch, ifMatch), ifMatch };
    const { master, target } = await this.change(recordId, connectionId, caller, request, async (current) => {
      const writes = Object.keys(patch).some((field) => field !== 'ownerid');
      requireRights(
        caller,
        current,
        ...(writes ? (['WriteAccess'] as const) : []),
        ...(patch.ownerid !== undefined ? (['AssignAccess'] as const) : []),
      );
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
    const { master } = await this.change(
      recordId,
      connectionId,
      caller,
      { fingerprint: requestPrint.shares(caller, recordId, connectionId, request) },
      (current) => {
        const shares = nextShares(current, requireRights(caller, current, 'ShareAccess'));
        if (JSON.stringify(shares) === JSON.stringify(current.shares)) return { kind: 'keep' };
        return { kind: 'write', half: touched({ ...current, shares }, caller, this.clock()) };
      },
    );
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
  async modifyAccess(
    recordId: string,
    connectionId: string,
    caller: Caller,
    principalId: string,
    input: ModifyAccessInput,
  ): Promise<Share> {
    const master = await this.changeShares(
      recordId,
      connectionId,
      caller,
      ['modify', principalId, input],
      (current, access) => {
        requireGrantable(access, input.accessmask);
        return modify(current.shares, principalId, input);
      },
    );
    return shareOf(master, principalId);
  }

  /** RevokeAccess: removes a principal's share entirely; revoking what is not there changes nothing. */
  async revokeAccess(
    recordId: string,
    connectionId: string,
    caller: Caller,
    principalId: string,
  ): Promise<ConnectionHalf> {
    return this.changeShares(recordId, connectionId, caller, ['revoke', principalId], (current) =>
      revoke(current.shares, principalId),
    );
  }
}

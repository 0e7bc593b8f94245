// Use cases: connection roles (the organisation's catalog): administrators change them, connection writes check against a cached catalog.
import type { Caller } from '../domain/caller';
import { ACTIVE, resolveObjectType } from '../domain/connection';
import { jitteredPause, realWaiting, type Waiting } from '../protocol/concurrency';
import { conflict, forbidden, notFound, preconditionFailed, unavailable } from '../domain/errors';
import type { IfMatch } from '../domain/preconditions';
import type { ObjectTypeRegistry } from '../domain/objectTypes';
import { decodeSkipToken, encodeSkipToken, queryFingerprint } from './skipTokens';
import {
  appliesTo,
  applyRoleUpdate,
  type ConnectionRole,
  type CreateRoleInput,
  newRole,
  RoleCatalog,
  type RoleCategory,
  roleEtagOf,
  type UpdateRoleInput,
} from '../domain/roles';
import type { RoleReservations } from '../protocol/reservations';
import type { RoleStore, StoredRole } from '../storage/roleStore';
import { isStorageStatus } from '../storage/storageErrors';

export interface RoleListQuery {
  category?: RoleCategory;
  statecode?: number;
  /** Only roles a record of this type (code or name) can take. */
  validfor?: string | number;
  /**
   * The role picker toward a record of this type (code or name): roles with an active matching role
   * that type can take, and roles with no active matching role at all (record 2's role then stays empty).
   */
  counterpart?: string | number;
}

/** Conditional writes that lose a race are retried this often at most (each round, one writer wins). */
const MAX_CONTENDED_ATTEMPTS = 25;

/**
 * Whether the role picker offers a role toward a record type: when one of its active matching roles
 * applies to that type (record 2 takes that role), or when it has no active matching role at all (a
 * one-sided role such as Stakeholder: record 1 takes it and record 2's role stays empty, which create
 * accepts). A role whose active matching roles all apply to other types is meant for those types only.
 */
export function offeredToward(catalog: RoleCatalog, role: ConnectionRole, typeCode: number): boolean {
  const active = catalog.matchingRoles(role.connectionroleid).filter((other) => other.statecode === ACTIVE);
  return active.length === 0 || active.some((other) => appliesTo(other, typeCode));
}

/** How long a cached catalog serves connection writes before it is read again. */
const CATALOG_TTL_MS = 30_000;

const roleNotFound = () => notFound('No such connection role.', 'ConnectionRoleNotFound');

function requireAdmin(caller: Caller): void {
  if (!caller.isAdmin) throw forbidden('Only administrators (app role Connections.Admin) can change connection roles.');
}

function checkIfMatch(ifMatch: IfMatch | undefined, role: ConnectionRole): void {
  if (ifMatch !== undefined && ifMatch !== '*' && !ifMatch.includes(roleEtagOf(role))) {
    throw preconditionFailed(
      'The role has changed since it was read (If-Match does not match its ETag): read it again.',
    );
  }
}

/**
 * Connection roles belong to the organisation: administrators change them, everyone reads them.
 * Connection writes check roles against a catalog cached per instance for a short time (roles change
 * rarely, connections often); changes made through this instance take effect on it at once.
 */
export class ConnectionRoleService {
  private cached: { catalog: RoleCatalog; loadedAt: number } | undefined;

  constructor(
    private readonly store: RoleStore,
    private readonly reservations: RoleReservations,
    private readonly types: ObjectTypeRegistry,
    private readonly clock: () => Date = () => new Date(),
    private readonly waiting: Waiting = realWaiting,
  ) {}

  /** The catalog for checking connection writes: cached, reloaded after CATALOG_TTL_MS. */
  async catalog(): Promise<RoleCatalog> {
    const now = this.clock().getTime();
    if (this.cached && now - this.cached.loadedAt < CATALOG_TTL_MS) return this.cached.catalog;
    return this.reload();
  }

  private async reload(): Promise<RoleCatalog> {
    const { roles, matches } = await this.store.loadAll();
    const catalog = new RoleCatalog(roles, matches);
    this.cached = { catalog, loadedAt: this.clock().getTime() };
    return catalog;
  }

  private invalidate(): void {
    this.cached = undefined;
  }

  async create(input: CreateRoleInput, caller: Caller): Promise<{ role: ConnectionRole; created: boolean }> {
    requireAdmin(caller);
    const role = newRole(input, this.types, caller, this.clock());
    try {
      await this.store.insert(role);
    } catch (error) {
      if (!isStorageStatus(error, 409)) throw error;
      const existing = await this.store.read(role.connectionroleid);
      const same =
        existing &&
        existing.role.name === role.name &&
        existing.role.category === role.category &&
        existing.role.description === role.description &&
        existing.role.objecttypecodes.join() === role.objecttypecodes.join();
      if (existing && same) return { role: existing.role, created: false };
      throw conflict(
        'DuplicateRecord',
        `A different connection role with id ${role.connectionroleid} already exists.`,
        {
          connectionroleid: role.connectionroleid,
        },
      );
    }
    this.invalidate();
    return { role, created: true };
  }

  async get(id: string): Promise<ConnectionRole> {
    const stored = await this.store.read(id);
    if (!stored) throw roleNotFound();
    return stored.role;
  }

  /** Roles are few: the list reads the fresh catalog (one partition query), filters and pages it in memory. */
  async list(
    query: RoleListQuery,
    top: number,
    skiptoken?: string,
  ): Promise<{ items: ConnectionRole[]; skiptoken?: string; count: number }> {
    const validfor =
      query.validfor === undefined ? undefined : resolveObjectType(this.types, query.validfor, 'validfor').code;
    const counterpart =
      query.counterpart === undefined
        ? undefined
        : resolveObjectType(this.types, query.counterpart, 'counterpart').code;
    const fingerprint = queryFingerprint({ ...query, validfor, counterpart });
    const after = skiptoken === undefined ? undefined : decodeSkipToken(skiptoken, 'roles', fingerprint);
    const catalog = await this.reload();
    const matching = catalog
      .all()
      .filter(
        (role) =>
          (query.category === undefined || role.category === query.category) &&
          (query.statecode === undefined || role.statecode === query.statecode) &&
          (validfor === undefined || appliesTo(role, validfor)) &&
          (counterpart === undefined || offeredToward(catalog, role, counterpart)),
      );
    const start = after === undefined ? 0 : matching.findIndex((role) => role.connectionroleid > after);
    const items = start < 0 ? [] : matching.slice(start, start + top);
    const last = items.at(-1);
    const more = start >= 0 && start + top < matching.length && last;
    return {
      items,
      count: matching.length,
      ...(more && { skiptoken: encodeSkipToken(last.connectionroleid, 'roles', fingerprint) }),
    };
  }

  /**
   * Writes conditionally on the version read. A client that sent If-Match pinned that version, so losing
   * the race is its 412; without If-Match it asked for last-writer-wins, so a lost race is read again and
   * retried (bounded, with jittered pauses), and only a role changed by very many requests at once is a 503.
   */
  async update(id: string, patch: UpdateRoleInput, caller: Caller, ifMatch?: IfMatch): Promise<ConnectionRole> {
    requireAdmin(caller);
    for (let attempt = 0; attempt < MAX_CONTENDED_ATTEMPTS; attempt++) {
      const stored = await this.readOrThrow(id);
      checkIfMatch(ifMatch, stored.role);
      const next = applyRoleUpdate(stored.role, patch, this.types, caller, this.clock());
      try {
        await this.store.replace(next, stored.etag);
      } catch (error) {
        if (isStorageStatus(error, 404)) throw roleNotFound(); // deleted meanwhile
        if (!isStorageStatus(error, 412)) throw error;
        if (ifMatch !== undefined)
          throw preconditionFailed('The role was changed by another request meanwhile: read it again.');
        await jitteredPause(this.waiting, attempt);
        continue;
      }
      this.invalidate();
      return next;
    }
    throw unavailable('The role is being changed by many requests at once; retry the request.', 1);
  }

  /**
   * Deleting a role that connections still use is refused (409 ConnectionRoleInUse): silently clearing
   * roles on many connections is not something a client should trigger by accident. Deactivate the role
   * instead (existing connections keep it, new ones cannot take it), or change those connections first.
   *
   * Safe against connection writes racing it (see protocol/reservations.ts): the role is marked as being deleted, then
   * checked, then deleted with its matches in one transaction, only if its row is still as marked; a
   * write that changed it meanwhile (another deletion, an update, which clears the mark) makes it look
   * again. A deletion that stops after marking leaves the role refused to new connections until it is
   * deleted again, updated, or the repair job clears the mark (after the grace period).
   */
  async delete(id: string, caller: Caller, ifMatch?: IfMatch): Promise<void> {
    requireAdmin(caller);
    for (let attempt = 0; attempt < MAX_CONTENDED_ATTEMPTS; attempt++) {
      const stored = await this.readOrThrow(id);
      checkIfMatch(ifMatch, stored.role);
      const now = this.clock().toISOString();
      let marked: string | undefined;
      try {
        marked = await this.store.mark(
          stored.role,
          stored.etag,
          now,
          `${now}.${this.waiting.random().toString(36).slice(2)}`,
        );
      } catch (error) {
        if (isStorageStatus(error, 404)) throw roleNotFound();
        if (!isStorageStatus(error, 412)) throw error;
      }
      this.invalidate();
      if (marked === undefined) {
        await jitteredPause(this.waiting, attempt); // changed meanwhile: look again (If-Match compares versions)
        continue;
      }
      if (await this.reservations.inUse(id, now)) {
        // Unmarked only if nobody wrote the role since; whoever did decides what it is now.
        await this.store.unmark(stored.role, marked).catch((error: unknown) => {
          if (!isStorageStatus(error, 412) && !isStorageStatus(error, 404)) throw error;
        });
        throw conflict(
          'ConnectionRoleInUse',
          'Connections still use this role: deactivate it, or remove it from those connections first.',
          {
            connectionroleid: id,
          },
        );
      }
      try {
        await this.store.deleteWithMatches(id, marked, await this.store.matchesOf(id));
      } catch (error) {
        // 412: written meanwhile (or this very delete, resent by the SDK after a lost answer); 404: a
        // match removed meanwhile, or the role gone: look again, unless it is gone.
        if (!isStorageStatus(error, 412) && !isStorageStatus(error, 404)) throw error;
        if (!(await this.store.read(id))) return this.invalidate();
        await jitteredPause(this.waiting, attempt);
        continue;
      }
      return this.invalidate();
    }
    throw unavailable('The role is being changed by many requests at once; retry the request.', 1);
  }

  async matchingRoles(id: string): Promise<ConnectionRole[]> {
    const catalog = await this.reload();
    if (!catalog.get(id)) throw roleNotFound();
    return catalog.matchingRoles(id).sort((a, b) => a.name.localeCompare(b.name));
  }

  async addMatch(id: string, otherId: string, caller: Caller): Promise<void> {
    requireAdmin(caller);
    await Promise.all([this.readOrThrow(id), this.readOrThrow(otherId)]);
    await this.store.putMatch(id, otherId);
    this.invalidate();
  }

  async removeMatch(id: string, otherId: string, caller: Caller): Promise<void> {
    requireAdmin(caller);
    if (!(await this.store.deleteMatch(id, otherId)))
      throw notFound('These roles do not match.', 'MatchingRoleNotFound');
    this.invalidate();
  }

  private async readOrThrow(id: string): Promise<StoredRole> {
    const stored = await this.store.read(id);
    if (!stored) throw roleNotFound();
    return stored;
  }
}

// Protocol: reservations of roles by connections about to commit with them, so a role is deleted only when no connection has it or can still commit with it.
import { forEachLimited } from './concurrency';
import type { ConnectionHalf } from '../domain/connection';
import { validationError } from '../domain/errors';
import type { ConnectionStore } from '../storage/connectionStore';
import { fenceSlot, slotOf } from './claims';
import type { Copy } from './copies';
import type { Reservation, RoleIndexStore } from '../storage/roleIndexStore';
import type { RoleStore } from '../storage/roleStore';
import { isStorageStatus } from '../storage/tablePort';
import { currentIndexKeys, roleOfIndexKey } from './indexKeys';

/**
 * Which roles are in use, safe under concurrency and crashes: a role is only deleted when no connection
 * has it and none can still commit with it.
 *
 * The role index alone cannot say so: a connection's entries are written after its commit (in the
 * connection's own partition), so a commit in flight, or one whose writer stopped before propagating,
 * is not in it. So a write that gives a connection a role it did not have **reserves** the role first:
 *
 * 1. a reservation row in the role's index partition, naming the connection's authoritative slot;
 * 2. then a fresh read of the role: it must exist and not be marked as being deleted;
 * 3. then the commit, conditional on a read of the slot made before step 1.
 *
 * A deletion marks the role (its ETag then orders it against every write of the role row), then looks at
 * the partition: a live entry, or a reservation whose connection has the role, means in use. A
 * reservation whose connection does not have the role may belong to a write still in flight: its slot
 * is fenced (claims.ts, fenceSlot), so that write's commit fails and, decided again, meets the mark
 * in step 2. A write whose step 2 came before the mark made its reservation before it too, so the
 * deletion sees it; a write whose step 2 came after the mark refuses the role.
 */
export class RoleReservations {
  constructor(
    private readonly index: RoleIndexStore,
    private readonly roles: RoleStore,
    private readonly connections: ConnectionStore,
  ) {}

  /**
   * Steps 1 and 2 for the index entries `next` (authoritative) gives its connection that `previous` did
   * not have, before committing it: by entry, not by role, so a role moving from one record's side to
   * the other (its entry moving to another key) is reserved too. `fields` names each role's field as the
   * client sent it, for the refusal.
   */
  async reserve(next: ConnectionHalf, previous: Copy | undefined, fields: (roleId: string) => string): Promise<void> {
    const had = new Set(previous && !previous.tombstone ? currentIndexKeys(previous.half) : []);
    const added = [
      ...new Set(
        currentIndexKeys(next)
          .filter((key) => !had.has(key))
          .map(roleOfIndexKey),
      ),
    ];
    if (added.length === 0) return;
    const slot = slotOf(next);
    await Promise.all(added.map((roleId) => this.index.reserve(roleId, slot, next.modifiedon)));
    const stored = await Promise.all(added.map((roleId) => this.roles.read(roleId)));
    added.forEach((roleId, at) => {
      const role = stored[at];
      if (!role || role.deleting !== undefined) {
        throw validationError(
          `Connection role ${roleId} does not exist.`,
          [{ field: fields(roleId), message: 'no such connection role' }],
          'ConnectionRoleNotFound',
        );
      }
    });
  }

  /**
   * Whether the role is in use, for a deletion that has marked it: a reservation whose connection has the
   * role, or a live index entry. Reservations first: the repair job writes a connection's entries
   * before it removes its reservation, so a use it moves from one to the other is seen in one of them.
   * Other reservations are settled (their slots fenced) and removed, several at a time.
   */
  async inUse(roleId: string, now: string): Promise<boolean> {
    let used = false;
    await forEachLimited(await this.index.reservations(roleId), SETTLE_CONCURRENCY, async (reservation) => {
      if (!used && (await this.settle(reservation, now))) used = true;
    });
    return used || this.index.hasLiveEntry(roleId);
  }

  /**
   * Clears the marks of deletions that stopped (crashed, timed out) more than `staleMs` ago, so their
   * roles take new connections again; each only if the role is still as that deletion left it.
   */
  async clearStaleMarks(now: number, staleMs: number): Promise<number> {
    let cleared = 0;
    for (const stored of await this.roles.marked()) {
      if (now - Date.parse(stored.deleting ?? '') < staleMs) continue;
      await this.roles.unmark(stored.role, stored.tokenEtag).then(
        () => cleared++,
        (error: unknown) => {
          if (!isStorageStatus(error, 412) && !isStorageStatus(error, 404)) throw error;
        },
      );
    }
    return cleared;
  }

  /**
   * Settles a reservation: true when its connection has the role (the reservation stays); otherwise its
   * slot is fenced, so no commit decided before can still give the role, and it is removed.
   */
  async settle(reservation: Reservation, now: string): Promise<boolean> {
    const { slot } = reservation;
    for (let round = 0; round < 5; round++) {
      const held = await this.connections.read(slot.record1id, slot.connectionid);
      if (held && !held.tombstone && connectionRoleIds(held.half).includes(reservation.roleId)) return true;
      try {
        await fenceSlot(this.connections, slot, held, now);
      } catch (error) {
        // The slot changed since read (a commit landed): look at what it holds now.
        if (isStorageStatus(error, 409) || isStorageStatus(error, 412) || isStorageStatus(error, 404)) continue;
        throw error;
      }
      await this.index.deleteIfUnchanged(reservation.roleId, reservation.rowKey, reservation.etag);
      return false;
    }
    return true; // a slot changing all the time: in use, as far as a deletion can tell
  }
}

const SETTLE_CONCURRENCY = 8;

/** The field a client named a role in, by the master's orientation (for a refusal). */
export const fieldsOf =
  (master: ConnectionHalf) =>
  (roleId: string): string =>
    master.record1roleid === roleId ? 'record1roleid' : 'record2roleid';

/** The distinct roles a connection's two records play. */
export const connectionRoleIds = (half: Pick<ConnectionHalf, 'record1roleid' | 'record2roleid'>): string[] => [
  ...new Set([half.record1roleid, half.record2roleid].filter((roleId): roleId is string => roleId !== null)),
];

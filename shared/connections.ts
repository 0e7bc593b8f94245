import type { Caller } from './caller';
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
import { decodeSkipToken, encodeSkipToken, queryFingerprint } from './paging';
import type { ConnectionStore, HalfQuery, StoredHalf } from './storage/connectionStore';
import { isStorageStatus } from './storage/errors';

/** An If-Match condition: any of these strong ETags, or "*" for "whatever exists". */
export type IfMatch = '*' | string[];

export interface ListQuery {
  recordId: string;
  othertypecode?: string | number;
  otherrecordid?: string;
  statecode?: number;
  activeon?: string;
}

export interface ListResult {
  items: ConnectionHalf[];
  skiptoken?: string;
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
    private readonly types: ObjectTypeRegistry,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async create(input: CreateConnectionInput, caller: Caller): Promise<{ half: ConnectionHalf; created: boolean }> {
    const master = newMasterHalf(input, this.types, caller, this.clock());
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
          return { half: existing.half, created: false };
        }
        if (holder) throw connectionExists(holder);
        continue; // whatever conflicted is gone again: try once more
      }
      // The twin is derived from a master that was just written, so overwriting any leftover is right.
      await this.store.put(reciprocalOf(master));
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
      const next = applyUpdate(master.half, patch, caller, this.clock());
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
      await this.syncTwin(next, target.half.ismaster ? undefined : target);
      return target.half.ismaster ? next : reciprocalOf(next);
    }
    throw unavailable('The connection is being changed by many requests at once; retry the request.', 1);
  }

  async delete(recordId: string, connectionId: string, ifMatch?: IfMatch): Promise<void> {
    const { target, master } = await this.readPair(recordId, connectionId);
    checkIfMatch(ifMatch, master.half);
    await this.store.remove(master.half);
    await this.store.remove(target.half.ismaster ? reciprocalOf(master.half) : target.half);
  }

  async list(query: ListQuery, top: number, skiptoken?: string): Promise<ListResult> {
    const halfQuery: HalfQuery = {
      recordId: query.recordId,
      ...(query.othertypecode !== undefined && {
        otherTypeCode: resolveObjectType(this.types, query.othertypecode, 'othertypecode').code,
      }),
      ...(query.otherrecordid !== undefined && { otherRecordId: query.otherrecordid }),
      ...(query.statecode !== undefined && { statecode: query.statecode }),
      ...(query.activeon !== undefined && { activeOn: query.activeon }),
    };
    const fingerprint = queryFingerprint(halfQuery);
    const continuation = skiptoken === undefined ? undefined : decodeSkipToken(skiptoken, query.recordId, fingerprint);
    const page = await this.store.page(halfQuery, top, continuation);
    return {
      items: page.items.map((stored) => stored.half),
      ...(page.continuationToken && { skiptoken: encodeSkipToken(page.continuationToken, query.recordId, fingerprint) }),
    };
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

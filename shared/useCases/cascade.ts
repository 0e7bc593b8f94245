// Use cases: the cascade, deleting every connection of a record (a record deleted in the business system).
import type { Caller } from '../domain/caller';
import { DomainError, forbidden } from '../domain/errors';
import { forEachLimited } from '../protocol/concurrency';
import { isLive } from '../protocol/copies';
import type { ConnectionStore } from '../storage/connectionStore';
import type { ConnectionCommands } from './connectionCommands';

const REMOTE_DELETE_CONCURRENCY = 16;
const CASCADE_PAGE_SIZE = 1000;

export class ConnectionCascade {
  constructor(
    private readonly store: ConnectionStore,
    private readonly commands: ConnectionCommands,
  ) {}

  /**
   * Deletes every connection of a record through the same protocol as a single delete (so the derived
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
          await this.commands.delete(recordId, stored.half.connectionid, caller);
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

// Protocol, repair: the repair walk over both tables, a page at a time, with the checkpoint a slice resumes from.
import { forEachLimited } from '../concurrency';
import { ANY_ETAG, isStorageStatus, type TableQuery } from '../../storage/tablePort';
import type { Checkpoint, Pass, Tables, WalkOptions, WalkResult } from './pass';
import type { RepairPort } from './repairPort';
import { checkConnectionRow, checkRoleIndexRow } from './rowChecks';

const PAGE_SIZE = 1000;
const ROW_CONCURRENCY = 16;
// The checkpoint lives in the connections table under a partition no record id can take ('~' sorts
// after every GUID), which also ends the walk's range.
const CHECKPOINT_PARTITION = '~repair';
const CHECKPOINT_ROW = 'checkpoint';

/**
 * Anti-entropy for the tables: checks (and, asked to, restores) what the write protocol keeps, by
 * walking both tables a page at a time. It holds one page in memory, checkpoints after every page (so a
 * huge partition cannot stall it), and isolates failures: a row that cannot be checked is counted and
 * logged, and the walk goes on.
 *
 * It never writes from what it listed: every repair goes through the protocol's own version-fenced
 * propagation of the authoritative copy as it is now, so a walk racing live requests cannot take a
 * copy back to an older version. It reaches the protocol and its stores only through a RepairPort
 * (repairPort.ts), the tables only to scan them and keep its checkpoint. What it checks, for every connection (rowChecks.ts, one check per row):
 * - the derived half and every index entry are at the authoritative copy's version and agree with it;
 * - a live, active connection holds its guard, and every guard names the live, active connection it
 *   guards; no two active connections share records and roles (a duplicate, which the protocol cannot
 *   produce but older data may hold, is resolved by a fixed rule: the earliest `createdon`, then the
 *   lowest id, stays active, the others are deactivated);
 * - a derived copy without an authoritative copy (which the protocol cannot produce either) is removed;
 * - tombstones older than the grace period are purged, derived copies first, the authoritative last (purge.ts).
 */
export class ConsistencyWalker {
  constructor(
    private readonly tables: Tables,
    private readonly port: RepairPort,
    private readonly clock: () => number = Date.now,
    private readonly log: (message: string) => void = (message) => console.warn(message),
  ) {}

  async walk(options: WalkOptions): Promise<WalkResult> {
    const result: WalkResult = { violations: [], repaired: 0, scanned: 0, purged: 0, skippedRecent: 0, failed: 0 };
    // A role deletion that stopped after marking its role would keep the role from new connections for
    // good: once no such request can be running, the mark goes (one query of the roles partition).
    if (options.repair && options.from === undefined) {
      result.repaired += await this.port.clearStaleRoleMarks(this.clock(), options.graceMs).catch((error: unknown) => {
        result.failed++;
        this.log(`repair: role marks not checked: ${error instanceof Error ? error.message : String(error)}`);
        return 0;
      });
    }
    const pass: Pass = {
      tables: this.tables,
      port: this.port,
      options,
      result,
      report: (violation) => result.violations.push(violation),
      clock: this.clock,
    };
    let checkpoint: Checkpoint | undefined = options.from ?? { phase: 'halves' };
    while (checkpoint) {
      const stoppedAt = await this.walkPhase(checkpoint, pass);
      if (stoppedAt) return { ...result, next: stoppedAt };
      checkpoint = checkpoint.phase === 'halves' ? { phase: 'index' } : undefined;
    }
    return result;
  }

  /** Reads the stored checkpoint of the repair job (undefined: start a new pass). */
  async loadCheckpoint(): Promise<Checkpoint | undefined> {
    const stored = await this.tables.connections.get(CHECKPOINT_PARTITION, CHECKPOINT_ROW);
    if (!stored) return undefined;
    const { phase, partition, row } = stored.entity;
    return {
      phase: phase === 'index' ? 'index' : 'halves',
      ...(typeof partition === 'string' && { partition }),
      ...(typeof row === 'string' && { row }),
    };
  }

  async saveCheckpoint(checkpoint: Checkpoint | undefined): Promise<void> {
    const key = { partitionKey: CHECKPOINT_PARTITION, rowKey: CHECKPOINT_ROW };
    if (!checkpoint) {
      await this.tables.connections.write({ op: 'delete', ...key, etag: ANY_ETAG }).catch((error: unknown) => {
        if (!isStorageStatus(error, 404)) throw error;
      });
      return;
    }
    await this.tables.connections.write({ op: 'upsert', entity: { ...key, ...checkpoint } });
  }

  /** One phase from a checkpoint: returns where it stopped at the deadline, undefined at its end. */
  private async walkPhase(from: Checkpoint, pass: Pass): Promise<Checkpoint | undefined> {
    const { options, result } = pass;
    const table = from.phase === 'halves' ? this.tables.connections : this.tables.roleIndex;
    const upper = from.phase === 'halves' ? { lt: CHECKPOINT_PARTITION } : {};
    const queries: TableQuery[] = [];
    // Resuming inside a partition: the rest of it first, then the partitions after it.
    if (from.partition !== undefined && from.row !== undefined)
      queries.push({ partitionKey: from.partition, rowKey: { gt: from.row } });
    queries.push({ partitionKey: from.partition === undefined ? upper : { gt: from.partition, ...upper } });
    for (const query of queries) {
      let continuation: string | undefined;
      do {
        const page = await table.query(query, {
          limit: PAGE_SIZE,
          ...(continuation !== undefined && { continuation }),
        });
        continuation = page.continuation;
        await forEachLimited(page.items, ROW_CONCURRENCY, async (stored) => {
          result.scanned++;
          try {
            if (from.phase === 'halves') await checkConnectionRow(pass, stored);
            else await checkRoleIndexRow(pass, stored);
          } catch (error) {
            result.failed++;
            this.log(
              `repair: ${stored.entity.partitionKey}/${stored.entity.rowKey} not checked: ${error instanceof Error ? error.message : String(error)}`,
            );
          }
        });
        const last = page.items.at(-1)?.entity;
        if (!last) continue;
        const position: Checkpoint = { phase: from.phase, partition: last.partitionKey, row: last.rowKey };
        if (options.persist) await this.saveCheckpoint(position);
        if (options.deadline !== undefined && this.clock() > options.deadline) return position;
      } while (continuation !== undefined);
    }
    return undefined;
  }
}

/**
 * One slice of the repair job: resumes at the stored checkpoint, repairs until the time budget runs out,
 * and stores where to go on; a finished pass clears the checkpoint, so the next slice starts a new one.
 */
export async function repairSlice(
  walker: ConsistencyWalker,
  budgetMs: number,
  graceMs: number,
  now: () => number = Date.now,
): Promise<WalkResult> {
  const from = await walker.loadCheckpoint();
  const result = await walker.walk({
    repair: true,
    graceMs,
    deadline: now() + budgetMs,
    persist: true,
    ...(from && { from }),
  });
  await walker.saveCheckpoint(result.next);
  return result;
}

import { odata, type TableClient, type TableEntityResult } from '@azure/data-tables';
import { forEachLimited } from './concurrency';
import { ACTIVE, type ConnectionHalf, reciprocalOf } from './connection';
import { type ConnectionStore, fromEntity, guardRowKey, type StoredHalf } from './storage/connectionStore';
import { isStorageStatus } from './storage/errors';
import { indexRowKey, type RoleIndexStore } from './storage/roleIndexStore';

/**
 * Anti-entropy for the tables: the invariant every operation keeps when it completes, checked (and,
 * asked to, restored) by walking the tables a page at a time. It holds one partition's guard keys in
 * memory at most, never a table, and stops and resumes at partition boundaries.
 *
 * The invariant: every half has its twin; twins mirror each other; every active half has its guard and
 * every guard an active half; no two active halves share records and roles; every half with a role has
 * its index entry, equal to it, and every index entry a half.
 *
 * Repairs follow the order of writes the operations use: the master is the truth, so a lone master
 * gets its twin (an unfinished create) and a lone twin is deleted (an unfinished delete); a twin that
 * differs from its master is rewritten from it; index entries and guards are derived from halves.
 */
export type ViolationKind =
  | 'missing-twin'
  | 'orphan-twin'
  | 'twin-mismatch'
  | 'missing-guard'
  | 'orphan-guard'
  | 'duplicate-active'
  | 'missing-index'
  | 'stale-index'
  | 'orphan-index';

export interface Violation {
  kind: ViolationKind;
  table: 'connections' | 'roleIndex';
  partitionKey: string;
  rowKey: string;
  detail: string;
}

export interface Checkpoint {
  phase: 'halves' | 'index';
  /** The last partition fully walked in this phase. */
  after?: string;
}

export interface WalkOptions {
  repair: boolean;
  /** Rows written more recently than this are left alone: an operation may still be finishing them. */
  graceMs: number;
  from?: Checkpoint;
  /** Stop at the first partition boundary after this time (ms since epoch). */
  deadline?: number;
}

export interface WalkResult {
  violations: Violation[];
  repaired: number;
  scanned: number;
  skippedRecent: number;
  /** Where to resume; undefined when the walk reached the end of both phases. */
  next?: Checkpoint;
}

export interface Tables {
  connections: TableClient;
  roleIndex: TableClient;
}

const PAGE_SIZE = 1000;
const READ_CONCURRENCY = 16;
// The checkpoint lives in the connections table under a key no record id can take.
const CHECKPOINT_PARTITION = '~repair';
const CHECKPOINT_ROW = 'checkpoint';

/** The fields two twins must agree on, once records, types and roles are swapped. */
function mirrors(twin: ConnectionHalf, master: ConnectionHalf): boolean {
  return JSON.stringify(twin) === JSON.stringify(reciprocalOf(master));
}

const comparable = (half: ConnectionHalf): string => JSON.stringify(half);

export class ConsistencyWalker {
  constructor(
    private readonly tables: Tables,
    private readonly store: ConnectionStore,
    private readonly index: RoleIndexStore,
    private readonly clock: () => number = Date.now,
  ) {}

  async walk(options: WalkOptions): Promise<WalkResult> {
    const result: WalkResult = { violations: [], repaired: 0, scanned: 0, skippedRecent: 0 };
    let checkpoint: Checkpoint | undefined = options.from ?? { phase: 'halves' };
    while (checkpoint) {
      const stoppedAt = checkpoint.phase === 'halves'
        ? await this.walkHalves(checkpoint.after, options, result)
        : await this.walkIndex(checkpoint.after, options, result);
      if (stoppedAt !== undefined) return { ...result, next: { phase: checkpoint.phase, after: stoppedAt } };
      checkpoint = checkpoint.phase === 'halves' ? { phase: 'index' } : undefined;
    }
    return result;
  }

  /** Reads the stored checkpoint of the repair job (undefined: start a new pass). */
  async loadCheckpoint(): Promise<Checkpoint | undefined> {
    try {
      const entity = await this.tables.connections.getEntity<{ phase: string; after?: string }>(CHECKPOINT_PARTITION, CHECKPOINT_ROW);
      const phase = entity.phase === 'index' ? 'index' : 'halves';
      return { phase, ...(entity.after && { after: entity.after }) };
    } catch (error) {
      if (isStorageStatus(error, 404)) return undefined;
      throw error;
    }
  }

  async saveCheckpoint(checkpoint: Checkpoint | undefined): Promise<void> {
    if (!checkpoint) {
      await this.tables.connections.deleteEntity(CHECKPOINT_PARTITION, CHECKPOINT_ROW).catch((error: unknown) => {
        if (!isStorageStatus(error, 404)) throw error;
      });
      return;
    }
    await this.tables.connections.upsertEntity(
      { partitionKey: CHECKPOINT_PARTITION, rowKey: CHECKPOINT_ROW, phase: checkpoint.phase, ...(checkpoint.after && { after: checkpoint.after }) },
      'Replace',
    );
  }

  private isRecent(entity: { timestamp?: string }, options: WalkOptions): boolean {
    return options.graceMs > 0 && entity.timestamp !== undefined && this.clock() - Date.parse(entity.timestamp) < options.graceMs;
  }

  private report(result: WalkResult, violation: Violation): void {
    result.violations.push(violation);
  }

  /**
   * Phase 1: the connections table, partition by partition. Returns the last partition walked when the
   * deadline stopped it, undefined at the end.
   */
  private async walkHalves(after: string | undefined, options: WalkOptions, result: WalkResult): Promise<string | undefined> {
    const filter = after === undefined ? odata`PartitionKey lt ${CHECKPOINT_PARTITION}` : odata`PartitionKey gt ${after} and PartitionKey lt ${CHECKPOINT_PARTITION}`;
    let partition: { key: string; expectedGuards: Map<string, string[]>; seenGuards: Set<string> } | undefined;
    const closePartition = async () => {
      if (!partition) return;
      for (const [guardKey, holders] of partition.expectedGuards) {
        if (holders.length > 1) {
          this.report(result, {
            kind: 'duplicate-active', table: 'connections', partitionKey: partition.key, rowKey: guardKey,
            detail: `active halves ${holders.join(', ')} share records and roles`,
          });
        }
        if (!partition.seenGuards.has(guardKey)) {
          this.report(result, { kind: 'missing-guard', table: 'connections', partitionKey: partition.key, rowKey: guardKey, detail: `guard of ${holders[0]}` });
          if (options.repair && holders[0]) {
            await this.tables.connections.upsertEntity({ partitionKey: partition.key, rowKey: guardKey, connectionid: holders[0] }, 'Replace');
            result.repaired++;
          }
        }
      }
    };

    const pages = this.tables.connections.listEntities<Record<string, unknown>>({ queryOptions: { filter } }).byPage({ maxPageSize: PAGE_SIZE });
    for await (const page of pages) {
      // Halves are checked in parallel (each needs point reads); guards after them, in order.
      const halves: TableEntityResult<Record<string, unknown>>[] = [];
      for (const entity of page) {
        const partitionKey = String(entity.partitionKey);
        const rowKey = String(entity.rowKey);
        if (partition?.key !== partitionKey) {
          await this.checkHalves(halves.splice(0), partition?.expectedGuards, options, result);
          await closePartition();
          if (partition && options.deadline !== undefined && this.clock() > options.deadline) return partition.key;
          partition = { key: partitionKey, expectedGuards: new Map(), seenGuards: new Set() };
        }
        result.scanned++;
        if (rowKey.startsWith('c_')) halves.push(entity);
        else if (rowKey.startsWith('u_')) {
          await this.checkHalves(halves.splice(0), partition.expectedGuards, options, result);
          await this.checkGuard(partitionKey, rowKey, entity, partition, options, result);
        }
      }
      await this.checkHalves(halves, partition?.expectedGuards, options, result);
    }
    await closePartition();
    return undefined;
  }

  private async checkGuard(
    partitionKey: string,
    rowKey: string,
    entity: TableEntityResult<Record<string, unknown>>,
    partition: { key: string; expectedGuards: Map<string, string[]>; seenGuards: Set<string> },
    options: WalkOptions,
    result: WalkResult,
  ): Promise<void> {
    partition.seenGuards.add(rowKey);
    const holders = partition.expectedGuards.get(rowKey);
    if (holders?.includes(String(entity.connectionid))) return;
    if (holders && holders.length > 0) {
      this.report(result, { kind: 'missing-guard', table: 'connections', partitionKey: partitionKey, rowKey: rowKey, detail: `guard names ${String(entity.connectionid)}, not ${holders[0]}` });
      if (options.repair) {
        await this.tables.connections.upsertEntity({ partitionKey: partitionKey, rowKey: rowKey, connectionid: holders[0] ?? '' }, 'Replace');
        result.repaired++;
      }
      return;
    }
    if (this.isRecent(entity, options)) {
      result.skippedRecent++;
      return;
    }
    this.report(result, { kind: 'orphan-guard', table: 'connections', partitionKey: partitionKey, rowKey: rowKey, detail: `no active half ${String(entity.connectionid)}` });
    if (options.repair) {
      await this.tables.connections.deleteEntity(partitionKey, rowKey, { etag: entity.etag }).catch((error: unknown) => {
        if (!isStorageStatus(error, 404) && !isStorageStatus(error, 412)) throw error;
      });
      result.repaired++;
    }
  }

  private async checkHalves(
    entities: TableEntityResult<Record<string, unknown>>[],
    expectedGuards: Map<string, string[]> | undefined,
    options: WalkOptions,
    result: WalkResult,
  ): Promise<void> {
    const stored = entities.map(fromEntity);
    for (const { half } of stored) {
      if (half.statecode !== ACTIVE || !expectedGuards) continue;
      const key = guardRowKey(half);
      expectedGuards.set(key, [...(expectedGuards.get(key) ?? []), half.connectionid]);
    }
    await forEachLimited(stored.map((half, position) => ({ half, entity: entities[position] })), READ_CONCURRENCY, async ({ half, entity }) => {
      if (entity && this.isRecent(entity, options)) {
        result.skippedRecent++;
        return;
      }
      await this.checkHalf(half, options, result);
    });
  }

  private async checkHalf(stored: StoredHalf, options: WalkOptions, result: WalkResult): Promise<void> {
    const { half } = stored;
    const where = { table: 'connections' as const, partitionKey: half.record1id, rowKey: stored.key };
    const twin = await this.store.read(half.record2id, half.relatedconnectionid);
    if (half.ismaster) {
      if (!twin) {
        this.report(result, { ...where, kind: 'missing-twin', detail: `twin ${half.relatedconnectionid} missing (an unfinished create)` });
        if (options.repair) {
          await this.store.put(reciprocalOf(half));
          result.repaired++;
        }
      } else if (!mirrors(twin.half, half)) {
        this.report(result, { ...where, kind: 'twin-mismatch', detail: `twin ${twin.half.connectionid} v${twin.half.versionnumber} differs from master v${half.versionnumber}` });
        if (options.repair) {
          await this.store.replace(reciprocalOf(half), twin).catch((error: unknown) => {
            if (!isStorageStatus(error, 412)) throw error; // changed meanwhile: the next pass looks again
          });
          result.repaired++;
        }
      }
    } else if (!twin) {
      this.report(result, { ...where, kind: 'orphan-twin', detail: `master ${half.relatedconnectionid} missing (an unfinished delete)` });
      if (options.repair) {
        await this.index.remove(half);
        await this.store.removeOrphan(half);
        result.repaired++;
      }
      return;
    }
    if (half.record1roleid !== null) await this.checkIndexEntry(half, options, result);
  }

  private async checkIndexEntry(half: ConnectionHalf, options: WalkOptions, result: WalkResult): Promise<void> {
    const where = { table: 'roleIndex' as const, partitionKey: half.record1roleid ?? '', rowKey: indexRowKey(half) };
    let entry: StoredHalf | undefined;
    try {
      entry = fromEntity(await this.tables.roleIndex.getEntity<Record<string, unknown>>(where.partitionKey, where.rowKey));
    } catch (error) {
      if (!isStorageStatus(error, 404)) throw error;
    }
    if (entry && comparable(entry.half) === comparable(half)) return;
    this.report(result, { ...where, kind: entry ? 'stale-index' : 'missing-index', detail: `index entry of ${half.connectionid}` });
    if (options.repair) {
      await this.index.put(half);
      result.repaired++;
    }
  }

  /** Phase 2: every index entry must belong to a half that still has that role. */
  private async walkIndex(after: string | undefined, options: WalkOptions, result: WalkResult): Promise<string | undefined> {
    const filter = after === undefined ? '' : odata`PartitionKey gt ${after}`;
    let partition: string | undefined;
    const pages = this.tables.roleIndex
      .listEntities<Record<string, unknown>>({ ...(filter && { queryOptions: { filter } }) })
      .byPage({ maxPageSize: PAGE_SIZE });
    for await (const page of pages) {
      const boundary = page.findIndex((entity) => partition !== undefined && entity.partitionKey !== partition);
      if (boundary >= 0 && partition && options.deadline !== undefined && this.clock() > options.deadline) {
        await this.checkIndexEntries(page.slice(0, boundary), options, result);
        return partition;
      }
      await this.checkIndexEntries(page, options, result);
      partition = page.at(-1)?.partitionKey ?? partition;
    }
    return undefined;
  }

  private async checkIndexEntries(entities: TableEntityResult<Record<string, unknown>>[], options: WalkOptions, result: WalkResult): Promise<void> {
    await forEachLimited(entities, READ_CONCURRENCY, async (entity) => {
      result.scanned++;
      if (this.isRecent(entity, options)) {
        result.skippedRecent++;
        return;
      }
      const entry = fromEntity(entity).half;
      const [partitionKey, rowKey] = [String(entity.partitionKey), String(entity.rowKey)];
      const half = await this.store.read(entry.record1id, entry.connectionid);
      if (half && half.half.record1roleid === partitionKey && indexRowKey(half.half) === rowKey) return;
      this.report(result, { kind: 'orphan-index', table: 'roleIndex', partitionKey, rowKey, detail: `no half ${entry.connectionid} with this role` });
      if (options.repair) {
        await this.tables.roleIndex.deleteEntity(partitionKey, rowKey, { etag: entity.etag }).catch((error: unknown) => {
          if (!isStorageStatus(error, 404) && !isStorageStatus(error, 412)) throw error;
        });
        result.repaired++;
      }
    });
  }
}

/**
 * One slice of the repair job: resumes at the stored checkpoint, repairs until the time budget runs out
 * (at a partition boundary), and stores where to go on; a finished pass clears the checkpoint, so the
 * next slice starts a new one.
 */
export async function repairSlice(walker: ConsistencyWalker, budgetMs: number, graceMs: number): Promise<WalkResult> {
  const from = await walker.loadCheckpoint();
  const result = await walker.walk({ repair: true, graceMs, deadline: Date.now() + budgetMs, ...(from && { from }) });
  await walker.saveCheckpoint(result.next);
  return result;
}

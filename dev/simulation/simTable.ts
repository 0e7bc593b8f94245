// Dev, simulation: the simulated table service, in memory, with the storage port's semantics as Azurite has them.
import {
  ANY_ETAG,
  type Condition,
  type KeyRange,
  type Page,
  type PropertyValue,
  type Stored,
  StorageError,
  type TableEntity,
  type TablePort,
  type TableQuery,
  type WriteOp,
  keyOf,
} from '../../shared/storage/tablePort';
import {
  assertBatch,
  assertCondition,
  assertEntity,
  assertPageSize,
  MAX_BATCH_OPERATIONS,
} from '../../shared/storage/tableRules';
import { Prng } from './prng';

/**
 * An in-memory table service with the port's semantics as Azurite (3.35) has them, pinned by
 * test/integration/tablePort.conformance.test.ts, which runs the same cases here and on Azurite. Every
 * operation has a synchronous form (`getNow`, `writeNow`, `batchNow`, `queryNow`) so the simulation's
 * scheduler can apply a step at the moment it picks it; the TablePort methods are those, made async.
 */

interface Row {
  partitionKey: string;
  rowKey: string;
  properties: Record<string, PropertyValue>;
  etag: string;
}

export interface SimTableOptions {
  /**
   * Real Table Storage may end a page early (at a partition boundary, after five seconds, at 1,000 rows
   * scanned), even with no entity in it, and hand back a continuation; callers must keep going. With this,
   * a query's page is cut short with the given probability (default 1/2): to a random length from 0 up,
   * or with a continuation after the last entity, so the next page is empty and final.
   */
  shortPages?: { seed: number; probability?: number };
}

// Azurite's limits and checks (TableHandler.validateKey, checkProperties; utils.isEtagValid).
const MAX_KEY_LENGTH = 512;
// eslint-disable-next-line no-control-regex -- control characters are exactly what Azurite refuses in keys
const INVALID_KEY_CHARACTER = /[\u0000-\u001f\u007f-\u009f/\\#?]/;
/** A string property holds at most 32K UTF-16 code units (64 KiB). */
const MAX_STRING_LENGTH = 32 * 1024;
const WEAK_ETAG = /^[wW]\/"([^"]|\\")*"$/;

const invalidInput = (): StorageError =>
  new StorageError(400, 'An error occurred while processing this request.', { code: 'InvalidInput' });
const notFound = (): StorageError =>
  new StorageError(404, 'The specified resource does not exist.', { code: 'ResourceNotFound' });
const alreadyExists = (): StorageError =>
  new StorageError(409, 'The specified entity already exists.', { code: 'EntityAlreadyExists' });
const conditionFailed = (): StorageError =>
  new StorageError(412, 'The update condition specified in the request was not satisfied.', {
    code: 'UpdateConditionNotSatisfied',
  });
const valueTooLarge = (): StorageError =>
  new StorageError(400, 'The property value exceeds the maximum allowed size (64KB).', {
    code: 'PropertyValueTooLarge',
  });
/**
 * Azurite's router fails with a bare 500 on a '/' in a key it reads from the URL (point read, replace,
 * upsert, delete; not insert, whose keys travel in the body, nor anything in a batch).
 */
const routingFailure = (): StorageError => new StorageError(500, 'Internal server error (a / in a key of the URL).');

const keyInvalid = (key: string): boolean => key.length > MAX_KEY_LENGTH || INVALID_KEY_CHARACTER.test(key);

/** (PartitionKey, RowKey) order: JavaScript's string order, UTF-16 code unit by code unit, as Azurite sorts. */
function compareKeys(pk1: string, rk1: string, pk2: string, rk2: string): number {
  if (pk1 !== pk2) return pk1 < pk2 ? -1 : 1;
  if (rk1 !== rk2) return rk1 < rk2 ? -1 : 1;
  return 0;
}

export class SimTableService {
  private readonly tables = new Map<string, SimTable>();
  private etags = 0;
  private readonly shortPages: { prng: Prng; probability: number } | undefined;

  constructor(options: SimTableOptions = {}) {
    this.shortPages = options.shortPages && {
      prng: new Prng(options.shortPages.seed),
      probability: options.shortPages.probability ?? 0.5,
    };
  }

  /** The table of that name, created empty on first use. */
  table(name: string): SimTable {
    let table = this.tables.get(name);
    if (!table) {
      table = new SimTable(name, this);
      this.tables.set(name, table);
    }
    return table;
  }

  tableNames(): string[] {
    return [...this.tables.keys()].sort();
  }

  /** Every entity of a table as stored, in key order, copied: for invariant checks. */
  dump(name: string): Stored[] {
    return this.table(name).dump();
  }

  /** Stores an entity as it is (no condition, no service check), e.g. to build a state; returns its ETag. */
  put(name: string, entity: TableEntity, etag?: string): string {
    return this.table(name).put(entity, etag);
  }

  /** A fresh ETag: a counter, so runs are reproducible; in the weak form Azurite insists on in If-Match. */
  nextEtag(): string {
    return `W/"${++this.etags}"`;
  }

  /** Whether this page is cut short, and where: undefined for a full page. */
  shortPage(found: number, limit: number): { keep: number; afterLast: boolean } | undefined {
    const short = this.shortPages;
    if (!short || found === 0 || short.prng.random() >= short.probability) return undefined;
    if (found <= limit && short.prng.random() < 0.5) return { keep: found, afterLast: true };
    return { keep: short.prng.int(Math.min(found, limit)), afterLast: false };
  }
}

export class SimTable implements TablePort {
  /** Sorted by (PartitionKey, RowKey). */
  private readonly rows: Row[] = [];

  constructor(
    readonly name: string,
    private readonly service: SimTableService,
  ) {}

  async get(partitionKey: string, rowKey: string): Promise<Stored | undefined> {
    return this.getNow(partitionKey, rowKey);
  }

  async write(op: WriteOp): Promise<string> {
    return this.writeNow(op);
  }

  async batch(ops: WriteOp[]): Promise<void> {
    this.batchNow(ops);
  }

  async query(query: TableQuery, page: { limit: number; continuation?: string }): Promise<Page> {
    return this.queryNow(query, page);
  }

  getNow(partitionKey: string, rowKey: string): Stored | undefined {
    if (partitionKey.includes('/') || rowKey.includes('/')) throw routingFailure();
    const index = this.find(partitionKey, rowKey);
    return index < 0 ? undefined : toStored(this.rows[index] as Row);
  }

  writeNow(op: WriteOp): string {
    if (op.op !== 'delete') assertEntity(op.entity);
    const failure = this.check(op, true);
    if (failure) throw failure;
    return this.apply(op);
  }

  /** All or nothing: the first failing operation's error, with its index, and nothing applied. */
  batchNow(ops: readonly WriteOp[]): void {
    assertBatch(ops);
    if (ops.length > MAX_BATCH_OPERATIONS) {
      throw inBatch(
        new StorageError(400, 'The batch request operation exceeds the maximum 100 changes per change set.', {
          code: 'InvalidInput',
        }),
        0,
      );
    }
    // Azurite runs the operations in order and rolls back at the first failure; a repeated entity fails
    // when its turn comes, not before. Their keys being distinct, checking all first and then applying
    // them all is the same thing.
    const seen = new Set<string>();
    ops.forEach((op, index) => {
      const { rowKey } = keyOf(op);
      if (seen.has(rowKey)) {
        throw inBatch(
          new StorageError(
            400,
            `A command with RowKey '${rowKey}' is already present in the batch. An entity can appear only once in a batch.`,
            {
              code: 'InvalidDuplicateRow',
            },
          ),
          index,
        );
      }
      seen.add(rowKey);
      const failure = this.check(op, false);
      if (failure) throw inBatch(failure, index);
    });
    for (const op of ops) this.apply(op);
  }

  queryNow(query: TableQuery, page: { limit: number; continuation?: string }): Page {
    assertPageSize(page.limit);
    for (const condition of query.where ?? []) assertCondition(condition);
    const matches = matcher(query);
    const start = page.continuation === undefined ? undefined : decodeContinuation(page.continuation);
    const partition = typeof query.partitionKey === 'string' ? query.partitionKey : undefined;
    // Start at the continuation, or at the first key the query can match, and stop past the partition.
    let index = 0;
    if (start) index = this.lowerBound(start[0], start[1]);
    else if (partition !== undefined) index = this.lowerBound(partition, '');
    const found: Row[] = [];
    for (; index < this.rows.length && found.length <= page.limit; index++) {
      const row = this.rows[index] as Row;
      if (partition !== undefined && row.partitionKey > partition) break;
      if (matches(row)) found.push(row);
    }
    const select = query.select;
    const short = this.service.shortPage(found.length, page.limit);
    if (short?.afterLast) {
      const last = found[found.length - 1] as Row;
      // The smallest key after the last one: the same partition, its RowKey followed by U+0000.
      return {
        items: found.map((row) => toStored(row, select)),
        continuation: encodeContinuation(last.partitionKey, `${last.rowKey}\u0000`),
      };
    }
    // As Azurite (and Table Storage) do, the continuation names the next entity to return, not the last
    // one returned: an entity inserted between the two before the next page is asked for is not seen.
    const keep = short ? short.keep : Math.min(found.length, page.limit);
    const next = found[keep];
    return {
      items: found.slice(0, keep).map((row) => toStored(row, select)),
      ...(next && { continuation: encodeContinuation(next.partitionKey, next.rowKey) }),
    };
  }

  dump(): Stored[] {
    return this.rows.map((row) => toStored(row));
  }

  put(entity: TableEntity, etag = this.service.nextEtag()): string {
    assertEntity(entity);
    this.store(entity, etag);
    return etag;
  }

  /** The service's answer to one operation, in the order Azurite checks; undefined when it would succeed. */
  private check(op: WriteOp, standalone: boolean): StorageError | undefined {
    const { partitionKey, rowKey } = keyOf(op);
    const index = this.find(partitionKey, rowKey);
    switch (op.op) {
      case 'insert':
        if (keyInvalid(partitionKey) || keyInvalid(rowKey)) return invalidInput();
        if (stringTooLong(op.entity)) return valueTooLarge();
        return index >= 0 ? alreadyExists() : undefined;
      case 'upsert':
        if (standalone && (partitionKey.includes('/') || rowKey.includes('/'))) return routingFailure();
        if (stringTooLong(op.entity)) return valueTooLarge();
        return keyInvalid(partitionKey) || keyInvalid(rowKey) ? invalidInput() : undefined;
      case 'replace':
        if (standalone && (partitionKey.includes('/') || rowKey.includes('/'))) return routingFailure();
        if (stringTooLong(op.entity)) return valueTooLarge();
        if (op.etag === '') return conditionFailed();
        if (op.etag !== ANY_ETAG && !WEAK_ETAG.test(op.etag)) return invalidInput();
        if (keyInvalid(partitionKey) || keyInvalid(rowKey)) return invalidInput();
        if (index < 0) return notFound();
        return etagMatches(op.etag, this.rows[index] as Row) ? undefined : conditionFailed();
      case 'delete':
        if (standalone && (partitionKey.includes('/') || rowKey.includes('/'))) return routingFailure();
        if (op.etag === '') return conditionFailed();
        if (op.etag !== ANY_ETAG && !WEAK_ETAG.test(op.etag)) return invalidInput();
        // No key check: an invalid key names no entity, so the answer is 404.
        if (index < 0) return notFound();
        return etagMatches(op.etag, this.rows[index] as Row) ? undefined : conditionFailed();
    }
  }

  /** Applies a checked operation; returns the new ETag ('' for a delete). */
  private apply(op: WriteOp): string {
    if (op.op === 'delete') {
      this.rows.splice(this.find(op.partitionKey, op.rowKey), 1);
      return '';
    }
    const etag = this.service.nextEtag();
    this.store(op.entity, etag);
    return etag;
  }

  private store(entity: TableEntity, etag: string): void {
    const row: Row = {
      partitionKey: entity.partitionKey,
      rowKey: entity.rowKey,
      properties: copyProperties(entity),
      etag,
    };
    const index = this.lowerBound(row.partitionKey, row.rowKey);
    const existing = this.rows[index];
    if (existing && existing.partitionKey === row.partitionKey && existing.rowKey === row.rowKey)
      this.rows[index] = row;
    else this.rows.splice(index, 0, row);
  }

  /** The index of the first row at or after the key. */
  private lowerBound(partitionKey: string, rowKey: string): number {
    let low = 0;
    let high = this.rows.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      const row = this.rows[middle] as Row;
      if (compareKeys(row.partitionKey, row.rowKey, partitionKey, rowKey) < 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** The index of the row with this key, or -1. */
  private find(partitionKey: string, rowKey: string): number {
    const index = this.lowerBound(partitionKey, rowKey);
    const row = this.rows[index];
    return row && row.partitionKey === partitionKey && row.rowKey === rowKey ? index : -1;
  }
}

const etagMatches = (etag: string, row: Row): boolean => etag === ANY_ETAG || etag === row.etag;

function stringTooLong(entity: TableEntity): boolean {
  for (const value of Object.values(entity))
    if (typeof value === 'string' && value.length > MAX_STRING_LENGTH) return true;
  return false;
}

/** A batch's failure names its operation, as the service's does ("2:The specified entity already exists."). */
const inBatch = (error: StorageError, index: number): StorageError =>
  new StorageError(error.status, `${index}:${error.message}`, { ...error.details, failedIndex: index });

/** What JSON makes of the values on the way to the service and back. */
function copyProperties(entity: TableEntity): Record<string, PropertyValue> {
  const properties: Record<string, PropertyValue> = {};
  for (const [name, value] of Object.entries(entity)) {
    if (name === 'partitionKey' || name === 'rowKey' || (value as PropertyValue | undefined) === undefined) continue;
    // JSON has no negative zero.
    properties[name] = value === 0 ? 0 : value;
  }
  return properties;
}

function toStored(row: Row, select?: readonly string[]): Stored {
  const entity: TableEntity = { partitionKey: row.partitionKey, rowKey: row.rowKey };
  if (select === undefined) Object.assign(entity, row.properties);
  else {
    for (const name of select) {
      const value = Object.hasOwn(row.properties, name) ? row.properties[name] : undefined;
      if (value !== undefined) entity[name] = value;
    }
  }
  return { entity, etag: row.etag };
}

function encodeContinuation(partitionKey: string, rowKey: string): string {
  return JSON.stringify([partitionKey, rowKey]);
}

function decodeContinuation(token: string): [string, string] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(token);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed) || parsed.length !== 2 || typeof parsed[0] !== 'string' || typeof parsed[1] !== 'string') {
    throw new Error(`Not a continuation of the simulated table service: ${token}`);
  }
  return [parsed[0], parsed[1]];
}

function inRange(key: string, range: KeyRange): boolean {
  return (
    (range.gt === undefined || key > range.gt) &&
    (range.ge === undefined || key >= range.ge) &&
    (range.lt === undefined || key < range.lt) &&
    (range.le === undefined || key <= range.le)
  );
}

/**
 * Azurite evaluates a comparison of a property with a constant with JavaScript's own operators: `===` for
 * eq, `!==` for ne (a missing property excepted), and the coercing `<`, `>`... for the rest, so '5' gt 3
 * holds and a missing property (undefined) never matches. Mirrored as it is: Table Storage only promises
 * results when property and constant have the same type, so a caller must not depend on the rest.
 */
function holds(condition: Condition, actual: PropertyValue | undefined): boolean {
  // The casts let TypeScript accept the comparisons JavaScript performs (coercion included) on purpose.
  const left = actual as number;
  const right = condition.value as number;
  switch (condition.op) {
    case 'eq':
      return actual === condition.value;
    case 'ne':
      return actual !== undefined && actual !== condition.value;
    case 'gt':
      return left > right;
    case 'ge':
      return left >= right;
    case 'lt':
      return left < right;
    case 'le':
      return left <= right;
  }
}

function valueOf(row: Row, property: string): PropertyValue | undefined {
  if (property === 'PartitionKey') return row.partitionKey;
  if (property === 'RowKey') return row.rowKey;
  return Object.hasOwn(row.properties, property) ? row.properties[property] : undefined;
}

function matcher(query: TableQuery): (row: Row) => boolean {
  const { partitionKey, rowKey, where = [] } = query;
  return (row) =>
    (partitionKey === undefined ||
      (typeof partitionKey === 'string'
        ? row.partitionKey === partitionKey
        : inRange(row.partitionKey, partitionKey))) &&
    (rowKey === undefined || inRange(row.rowKey, rowKey)) &&
    where.every((condition) => holds(condition, valueOf(row, condition.property)));
}

/**
 * The one interface the storage code uses to reach a table. In Azure (and on Azurite) it is backed by
 * `@azure/data-tables` (AzureTable, azureTable.ts); in the deterministic simulation by an in-memory table
 * service whose semantics one conformance suite pins to Azurite's. Keeping it this small (point read,
 * single conditional write, one-partition batch, structured query) is what makes the simulator
 * trustworthy: there is little to get wrong, and all of it is tested against the real thing.
 *
 * Failures are thrown as StorageError with the HTTP status the service answered (404 missing, 409
 * exists, 412 ETag mismatch, 503 throttled...) or `undefined` when no answer arrived at all. A call that
 * breaks the port's own rules (tableRules.ts: property names and values, batch shape, page size) is
 * refused with a plain Error before anything is sent: it is a bug in the caller, not a fault to retry.
 */
export type PropertyValue = string | number | boolean;

/**
 * Keys: at most 512 UTF-16 code units, none of / \ # ? or a control character (writes answer 400
 * InvalidInput; on Azurite a / in a key that travels in the URL, as in get, replace, upsert and delete,
 * is a bare 500). Properties: C#-identifier names, not PartitionKey, RowKey, Timestamp, timestamp or etag;
 * strings of at most 32K code units (400 PropertyValueTooLarge), finite numbers, booleans. Numbers travel
 * untyped: they come back as numbers, integer or not. Azurite keeps integers beyond 32 bits as they are;
 * Table Storage types an untyped integer as Int32, so keep integers within ±2^31 or store them as strings.
 */
export interface TableEntity {
  partitionKey: string;
  rowKey: string;
  [property: string]: PropertyValue;
}

/** An entity as stored, with the ETag a conditional write must name. */
export interface Stored {
  entity: TableEntity;
  /**
   * Changes on every write of the entity. Compare it only with the same entity's: Azurite's ETag is a
   * millisecond plus four digits of a high-resolution clock, and entities written by one batch often
   * share one (about 30 distinct among 100).
   */
  etag: string;
}

/** "Whatever version is there": the ETag of an unconditional replace or delete. */
export const ANY_ETAG = '*';

export type WriteOp =
  /** Fails with 409 when the entity exists. */
  | { op: 'insert'; entity: TableEntity }
  /** Fails with 404 when it does not exist, 412 when its ETag is not `etag` (ANY_ETAG matches any). */
  | { op: 'replace'; entity: TableEntity; etag: string }
  /** Inserts or replaces, unconditionally. */
  | { op: 'upsert'; entity: TableEntity }
  /** Fails with 404 when it does not exist, 412 when its ETag is not `etag` (ANY_ETAG matches any). */
  | { op: 'delete'; partitionKey: string; rowKey: string; etag: string };

export interface KeyRange {
  gt?: string;
  ge?: string;
  lt?: string;
  le?: string;
}

export type Comparison = 'eq' | 'ne' | 'gt' | 'ge' | 'lt' | 'le';

/**
 * A property compared with a value (PartitionKey and RowKey may be named too). An entity without the
 * property never matches, whatever the comparison, `ne` included. Compare a property only with a value
 * of its own type: Table Storage promises nothing otherwise, and Azurite (so the simulator) compares with
 * JavaScript's operators, so `ne` matches a property of another type and gt/ge/lt/le coerce ('5' gt 3
 * holds, '' lt 3 holds). Integers and doubles are both numbers: 1 eq 1.0. Strings compare by UTF-16 code
 * units, as keys do.
 */
export interface Condition {
  property: string;
  op: Comparison;
  value: PropertyValue;
}

export interface TableQuery {
  /** One partition, or a range of partitions (walks over the whole table). Omitted: every partition. */
  partitionKey?: string | KeyRange;
  rowKey?: KeyRange;
  /** Every condition must hold. */
  where?: Condition[];
  /** Properties to return (keys are always returned); omitted: all. */
  select?: string[];
}

export interface Page {
  /**
   * In key order (PartitionKey, then RowKey; strings compared by UTF-16 code units). May be shorter than
   * the limit, even empty, when `continuation` is set.
   */
  items: Stored[];
  /**
   * Where the next page starts; undefined at the end. Opaque. It names the next entity that was to be
   * returned, not the last one returned: an entity inserted between the two before the next page is
   * asked for is skipped (deleting the named entity is harmless, the walk resumes after it).
   */
  continuation?: string;
}

export interface TablePort {
  /** undefined when the entity does not exist. */
  get(partitionKey: string, rowKey: string): Promise<Stored | undefined>;
  /** Returns the new ETag (empty for a delete). */
  write(op: WriteOp): Promise<string>;
  /**
   * An entity group transaction: up to 100 operations on distinct entities of one partition, all applied
   * or none. A failure is the first failing operation's StorageError (in order), with `failedIndex` set
   * and the status the operation would get alone: 409 insert over an entity, 404 replace or delete of a
   * missing one, 412 stale ETag, 400 InvalidDuplicateRow for an entity's second appearance. More than 100
   * operations: 400 InvalidInput at index 0. A delete inside a batch is unconditional (the SDK sends it
   * with If-Match: *): give it ANY_ETAG. No operations, two partitions, or a delete with another ETag are
   * refused before sending.
   */
  batch(ops: WriteOp[]): Promise<void>;
  /** At most `limit` entities (1 to 1,000; others are refused) of a query, from `continuation` on. */
  query(query: TableQuery, page: { limit: number; continuation?: string }): Promise<Page>;
}

export class StorageError extends Error {
  constructor(
    /** The HTTP status storage answered; undefined when no answer arrived (network fault, timeout). */
    readonly status: number | undefined,
    message: string,
    readonly details: { code?: string; failedIndex?: number; retryAfterSeconds?: number } = {},
  ) {
    super(message);
    this.name = 'StorageError';
  }
}

/** The HTTP status a storage call failed with; undefined for anything else (and for network faults). */
export const storageStatus = (error: unknown): number | undefined =>
  error instanceof StorageError ? error.status : undefined;

export const isStorageStatus = (error: unknown, status: number): boolean => storageStatus(error) === status;

/** The key of an operation's entity, whatever the operation. */
export const keyOf = (op: WriteOp): { partitionKey: string; rowKey: string } =>
  op.op === 'delete'
    ? { partitionKey: op.partitionKey, rowKey: op.rowKey }
    : { partitionKey: op.entity.partitionKey, rowKey: op.entity.rowKey };

/** Every entity a query matches, page by page (for walks and small partitions). */
export async function* queryAll(table: TablePort, query: TableQuery, limit = 1000): AsyncGenerator<Stored[]> {
  let continuation: string | undefined;
  do {
    const page = await table.query(query, { limit, ...(continuation !== undefined && { continuation }) });
    if (page.items.length > 0) yield page.items;
    continuation = page.continuation;
  } while (continuation !== undefined);
}

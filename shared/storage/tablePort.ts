/**
 * The one interface the storage code uses to reach a table. In Azure (and on Azurite) it is backed by
 * `@azure/data-tables` (AzureTable, azureTable.ts); in the deterministic simulation by an in-memory table
 * service whose semantics one conformance suite pins to Azurite's. Keeping it this small (point read,
 * single conditional write, one-partition batch, structured query) is what makes the simulator
 * trustworthy: there is little to get wrong, and all of it is tested against the real thing.
 *
 * Failures are thrown as StorageError with the HTTP status the service answered (404 missing, 409
 * exists, 412 ETag mismatch, 503 throttled...) or `undefined` when no answer arrived at all.
 */
export type PropertyValue = string | number | boolean;

export interface TableEntity {
  partitionKey: string;
  rowKey: string;
  [property: string]: PropertyValue;
}

/** An entity as stored, with the ETag a conditional write must name. */
export interface Stored {
  entity: TableEntity;
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
 * A property compared with a value. As in Table Storage, an entity without the property, or whose
 * property has another type than the value, does not match (whatever the comparison, `ne` included).
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
  /** In key order (PartitionKey, then RowKey). May be empty even when `continuation` is set. */
  items: Stored[];
  /** Where the next page starts; undefined at the end. Opaque. */
  continuation?: string;
}

export interface TablePort {
  /** undefined when the entity does not exist. */
  get(partitionKey: string, rowKey: string): Promise<Stored | undefined>;
  /** Returns the new ETag (empty for a delete). */
  write(op: WriteOp): Promise<string>;
  /**
   * An entity group transaction: up to 100 operations on distinct entities of one partition, all applied
   * or none. A failure is the first failing operation's StorageError, with `failedIndex` set. A delete
   * inside a batch is unconditional (the SDK sends it with If-Match: *): give it ANY_ETAG.
   */
  batch(ops: WriteOp[]): Promise<void>;
  /** At most `limit` entities (1 to 1,000) of a query, from `continuation` on. */
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
export const storageStatus = (error: unknown): number | undefined => (error instanceof StorageError ? error.status : undefined);

export const isStorageStatus = (error: unknown, status: number): boolean => storageStatus(error) === status;

/** The key of an operation's entity, whatever the operation. */
export const keyOf = (op: WriteOp): { partitionKey: string; rowKey: string } =>
  op.op === 'delete' ? { partitionKey: op.partitionKey, rowKey: op.rowKey } : { partitionKey: op.entity.partitionKey, rowKey: op.entity.rowKey };

/** Every entity a query matches, page by page (for walks and small partitions). */
export async function* queryAll(table: TablePort, query: TableQuery, limit = 1000): AsyncGenerator<Stored[]> {
  let continuation: string | undefined;
  do {
    const page = await table.query(query, { limit, ...(continuation !== undefined && { continuation }) });
    if (page.items.length > 0) yield page.items;
    continuation = page.continuation;
  } while (continuation !== undefined);
}

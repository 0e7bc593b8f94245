import { ANY_ETAG, type Condition, type PropertyValue, type TableEntity, type WriteOp } from './tablePort';

/**
 * The port's own rules, checked before anything reaches storage, by AzureTable and by the simulated table
 * alike. They catch what is a bug in the caller rather than an answer of the service: some would never be
 * sent by the SDK at all (it throws its own errors, which would otherwise look like network faults), some
 * would silently lose data (a property named `timestamp` or holding NaN), some are answered differently by
 * Azurite and by Table Storage. Breaking one throws a plain Error, never a StorageError, so no retry loop
 * mistakes it for a fault of the service.
 */

/** Table Storage's answer for more operations than this in one batch is 400 InvalidInput (the service checks it). */
export const MAX_BATCH_OPERATIONS = 100;
/** The most entities one query page can ask for. */
export const MAX_PAGE_SIZE = 1000;

/** C#-identifier property names, as Table Storage asks; 255 characters at most. */
const PROPERTY_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,254}$/;

/**
 * Names the service or the SDK keep for themselves: `Timestamp` and `etag` are dropped on write, a
 * `PartitionKey` or `RowKey` property collides with the keys, and `timestamp` collides on read with the
 * SDK's name for the service's Timestamp.
 */
const RESERVED_PROPERTIES = new Set([
  'PartitionKey',
  'RowKey',
  'Timestamp',
  'timestamp',
  'etag',
  'partitionKey',
  'rowKey',
]);

/** Words the OData filter grammar reserves: a property with one of these names cannot be filtered on. */
const FILTER_KEYWORDS = new Set(['and', 'or', 'not', 'eq', 'ne', 'gt', 'ge', 'lt', 'le', 'true', 'false', 'null']);

export function assertEntity(entity: TableEntity): void {
  if (typeof entity.partitionKey !== 'string' || typeof entity.rowKey !== 'string')
    throw new Error('An entity needs string keys.');
  for (const [name, value] of Object.entries(entity)) {
    if (name === 'partitionKey' || name === 'rowKey') continue;
    if (RESERVED_PROPERTIES.has(name) || !PROPERTY_NAME.test(name))
      throw new Error(`Not a property name an entity may use: ${name}`);
    // An undefined property is left out of the JSON the SDK sends, so it is simply absent.
    if ((value as PropertyValue | undefined) === undefined) continue;
    // JSON has no NaN or Infinity: the SDK would send null and the property would vanish.
    if (typeof value === 'number' ? !Number.isFinite(value) : typeof value !== 'string' && typeof value !== 'boolean') {
      throw new Error(`Property ${name} holds ${String(value)}: only strings, finite numbers and booleans are stored.`);
    }
  }
}

/**
 * A batch the SDK would send. It refuses an empty one (with a TypeError), one spanning partitions, and
 * cannot make a delete conditional (it always sends If-Match: *); an op count over 100 it sends and the
 * service refuses.
 */
export function assertBatch(ops: readonly WriteOp[]): void {
  if (ops.length === 0) throw new Error('A batch needs at least one operation.');
  let partitionKey: string | undefined;
  for (const op of ops) {
    const key = op.op === 'delete' ? op.partitionKey : op.entity.partitionKey;
    if (partitionKey === undefined) partitionKey = key;
    else if (key !== partitionKey) throw new Error('All operations of a batch must target one partition.');
    if (op.op === 'delete' && op.etag !== ANY_ETAG)
      throw new Error('A delete inside a batch is unconditional: pass ANY_ETAG.');
    if (op.op !== 'delete') assertEntity(op.entity);
  }
}

export function assertCondition(condition: Condition): void {
  if (!PROPERTY_NAME.test(condition.property) || FILTER_KEYWORDS.has(condition.property)) {
    throw new Error(`Not a property name a filter can use: ${condition.property}`);
  }
  if (typeof condition.value === 'number' && !Number.isFinite(condition.value))
    throw new Error('A filter compares with finite numbers only.');
}

export function assertPageSize(limit: number): void {
  // Azurite quietly caps a larger page at 1,000 and Table Storage refuses it: neither is worth relying on.
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE)
    throw new Error(`A page holds 1 to ${MAX_PAGE_SIZE} entities, not ${limit}.`);
}

import { RestError, type TableClient, type TableEntityResult, type TransactionAction } from '@azure/data-tables';
import {
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
} from './tablePort';
import { assertBatch, assertCondition, assertEntity, assertPageSize } from './tableRules';

const SERVICE_KEYS = new Set(['etag', 'timestamp', 'odata.metadata', 'odata.etag']);

/** Table Storage through `@azure/data-tables`: the port as it runs in Azure and against Azurite. */
export class AzureTable implements TablePort {
  constructor(readonly client: TableClient) {}

  async get(partitionKey: string, rowKey: string): Promise<Stored | undefined> {
    try {
      return toStored(await this.client.getEntity<Record<string, unknown>>(partitionKey, rowKey));
    } catch (error) {
      const failure = asStorageError(error);
      if (failure.status === 404) return undefined;
      throw failure;
    }
  }

  async write(op: WriteOp): Promise<string> {
    if (op.op !== 'delete') assertEntity(op.entity);
    try {
      switch (op.op) {
        case 'insert':
          return (await this.client.createEntity(op.entity)).etag ?? '';
        case 'replace':
          return (await this.client.updateEntity(op.entity, 'Replace', { etag: op.etag })).etag ?? '';
        case 'upsert':
          return (await this.client.upsertEntity(op.entity, 'Replace')).etag ?? '';
        case 'delete':
          await this.client.deleteEntity(op.partitionKey, op.rowKey, { etag: op.etag });
          return '';
      }
    } catch (error) {
      throw asStorageError(error);
    }
  }

  async batch(ops: WriteOp[]): Promise<void> {
    // Checked outside the try: the SDK's own refusals are not StorageErrors, and must not look like one
    // with no status (a network fault, which a caller may retry).
    assertBatch(ops);
    try {
      await this.client.submitTransaction(ops.map(toAction));
    } catch (error) {
      throw asStorageError(error);
    }
  }

  async query(query: TableQuery, page: { limit: number; continuation?: string }): Promise<Page> {
    assertPageSize(page.limit);
    const filter = toFilter(query);
    // Azurite returns only the properties named, keys included: ask for the keys, which the port always returns.
    const select = query.select && [...new Set(['PartitionKey', 'RowKey', ...query.select])];
    const iterator = this.client
      .listEntities<Record<string, unknown>>({ queryOptions: { ...(filter && { filter }), ...(select && { select }) } })
      .byPage({
        maxPageSize: page.limit,
        ...(page.continuation !== undefined && { continuationToken: page.continuation }),
      });
    try {
      const result = await iterator.next();
      if (result.done) return { items: [] };
      const token = result.value.continuationToken;
      return { items: result.value.map(toStored), ...(token && { continuation: token }) };
    } catch (error) {
      throw asStorageError(error);
    }
  }
}

function toAction(op: WriteOp): TransactionAction {
  switch (op.op) {
    case 'insert':
      return ['create', op.entity];
    case 'replace':
      return ['update', op.entity, 'Replace', { etag: op.etag }];
    case 'upsert':
      return ['upsert', op.entity, 'Replace'];
    case 'delete':
      // The SDK sends a transaction's deletes with If-Match: *, so assertBatch has made sure it says ANY_ETAG.
      return ['delete', { partitionKey: op.partitionKey, rowKey: op.rowKey }];
  }
}

function toStored(result: TableEntityResult<Record<string, unknown>>): Stored {
  const entity: TableEntity = { partitionKey: String(result.partitionKey), rowKey: String(result.rowKey) };
  for (const [key, value] of Object.entries(result)) {
    if (SERVICE_KEYS.has(key) || key === 'partitionKey' || key === 'rowKey' || value === null || value === undefined)
      continue;
    // Int64 comes back as BigInt; nothing here writes one, but a number is what the rest expects.
    entity[key] = typeof value === 'bigint' ? Number(value) : (value as PropertyValue);
  }
  return { entity, etag: result.etag };
}

/** The SDK's errors as the port's: the status, the service's code, and for a batch the failing index. */
export function asStorageError(error: unknown): StorageError {
  if (error instanceof StorageError) return error;
  if (!(error instanceof RestError)) {
    return new StorageError(undefined, error instanceof Error ? error.message : String(error));
  }
  const parsed = (error.response as { parsedBody?: unknown } | undefined)?.parsedBody as
    { odataError?: { code?: string } } | undefined;
  const details = error.details as { errorCode?: string } | undefined;
  const code =
    details?.errorCode ?? parsed?.odataError?.code ?? (typeof error.code === 'string' ? error.code : undefined);
  const index = /^(\d+):/.exec(error.message)?.[1];
  const retryAfter = Number(error.response?.headers.get('retry-after'));
  return new StorageError(error.statusCode, error.message, {
    ...(code !== undefined && { code }),
    ...(index !== undefined && { failedIndex: Number(index) }),
    ...(Number.isFinite(retryAfter) && retryAfter > 0 && { retryAfterSeconds: retryAfter }),
  });
}

function rangeFilter(name: 'PartitionKey' | 'RowKey', range: KeyRange): string[] {
  const parts: string[] = [];
  if (range.gt !== undefined) parts.push(`${name} gt ${literal(range.gt)}`);
  if (range.ge !== undefined) parts.push(`${name} ge ${literal(range.ge)}`);
  if (range.lt !== undefined) parts.push(`${name} lt ${literal(range.lt)}`);
  if (range.le !== undefined) parts.push(`${name} le ${literal(range.le)}`);
  return parts;
}

/**
 * A value as an OData literal. Not the SDK's odata`${value}` on its own: with no text before the value it
 * leaves a string unquoted, and it writes numbers as String() does, exponent and all.
 */
function literal(value: PropertyValue): string {
  if (typeof value === 'string') return `'${value.replace(/'/g, "''")}'`;
  if (typeof value === 'boolean') return String(value);
  const plain = String(value);
  if (!plain.includes('e')) return plain;
  // Azurite's filter lexer takes no exponent ('x eq 1e-7' is accepted and matches nothing): write the digits out.
  const digits = Number.isInteger(value) ? BigInt(value).toString() : value.toFixed(100).replace(/0+$/, '');
  if (Number(digits) !== value) throw new Error(`${plain} cannot be written as a filter literal.`);
  return digits;
}

function conditionFilter(condition: Condition): string {
  assertCondition(condition);
  return `${condition.property} ${condition.op} ${literal(condition.value)}`;
}

/** The OData filter of a query ('' for none). */
export function toFilter(query: TableQuery): string {
  const parts: string[] = [];
  if (typeof query.partitionKey === 'string') parts.push(`PartitionKey eq ${literal(query.partitionKey)}`);
  else if (query.partitionKey) parts.push(...rangeFilter('PartitionKey', query.partitionKey));
  if (query.rowKey) parts.push(...rangeFilter('RowKey', query.rowKey));
  for (const condition of query.where ?? []) parts.push(conditionFilter(condition));
  return parts.join(' and ');
}

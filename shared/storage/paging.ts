import type { TableClient, TableEntityResult } from '@azure/data-tables';

export interface Page<T> {
  items: T[];
  /** Storage's continuation token, when more may follow. */
  continuationToken?: string;
}

/**
 * One page of a filtered query: one storage request. Storage may answer a filtered query with an empty
 * page that still carries a continuation; those are followed, so a caller never gets an empty page
 * that claims more.
 */
export async function queryPage<T>(
  client: TableClient,
  filter: string,
  top: number,
  continuationToken: string | undefined,
  map: (entity: TableEntityResult<Record<string, unknown>>) => T,
): Promise<Page<T>> {
  let token = continuationToken;
  for (;;) {
    const iterator = client
      .listEntities<Record<string, unknown>>({ queryOptions: { filter } })
      .byPage({ maxPageSize: top, ...(token ? { continuationToken: token } : {}) });
    const result = await iterator.next();
    const page = result.done ? undefined : result.value;
    const items = (page ?? []).map(map);
    token = page?.continuationToken;
    if (items.length > 0 || !token) return { items, ...(token ? { continuationToken: token } : {}) };
  }
}

/** How many entities a filter matches, reading keys only, 1,000 per request. */
export async function countMatching(client: TableClient, filter: string): Promise<number> {
  let count = 0;
  const pages = client.listEntities({ queryOptions: { filter, select: ['RowKey'] } }).byPage({ maxPageSize: 1000 });
  for await (const page of pages) count += page.length;
  return count;
}

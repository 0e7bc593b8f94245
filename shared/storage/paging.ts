import type { TableClient, TableEntityResult } from '@azure/data-tables';
import { z } from 'zod';
import type { Share } from '../access';

export interface Range<T> {
  items: T[];
  /** Whether storage has more rows after these. */
  more: boolean;
}

/**
 * Up to `limit` entities of a filtered query (the filter says where to start): one storage request.
 * Storage may answer a filtered query with an empty page that still carries a continuation; those are
 * followed, so a range is empty only at the end.
 */
export async function queryRange<T>(
  client: TableClient,
  filter: string,
  limit: number,
  map: (entity: TableEntityResult<Record<string, unknown>>) => T,
): Promise<Range<T>> {
  let token: string | undefined;
  for (;;) {
    const iterator = client
      .listEntities<Record<string, unknown>>({ queryOptions: { filter } })
      .byPage({ maxPageSize: limit, ...(token ? { continuationToken: token } : {}) });
    const result = await iterator.next();
    const page = result.done ? undefined : result.value;
    const items = (page ?? []).map(map);
    token = page?.continuationToken;
    if (items.length > 0 || !token) return { items, more: Boolean(token) };
  }
}

export const shareListSchema = z.array(
  z.object({ principalid: z.string(), principaltype: z.enum(['systemuser', 'team']), accessmask: z.number() }),
);

/** Who may see a row: its owner and shares, the only columns a visibility check reads. */
export type Visibility = (row: { ownerid: string; shares: Share[] }) => boolean;

function visibilityColumns(entity: Record<string, unknown>): { ownerid: string; shares: Share[] } {
  return {
    ownerid: String(entity.ownerid ?? ''),
    shares: typeof entity.shares === 'string' ? shareListSchema.parse(JSON.parse(entity.shares)) : [],
  };
}

/**
 * Walks every row a filter matches, 1,000 per request, reading only the named columns (and, with a
 * visibility check, owner and shares), and hands each visible row to `visit`.
 */
export async function scanColumns(
  client: TableClient,
  filter: string,
  columns: string[],
  visible: Visibility | undefined,
  visit: (entity: Record<string, unknown>) => void,
): Promise<void> {
  const select = visible ? [...columns, 'ownerid', 'shares'] : columns;
  const pages = client.listEntities<Record<string, unknown>>({ queryOptions: { filter, select } }).byPage({ maxPageSize: 1000 });
  for await (const page of pages) {
    for (const entity of page) if (!visible || visible(visibilityColumns(entity))) visit(entity);
  }
}

export async function countMatching(client: TableClient, filter: string, visible?: Visibility): Promise<number> {
  let count = 0;
  await scanColumns(client, filter, ['RowKey'], visible, () => count++);
  return count;
}

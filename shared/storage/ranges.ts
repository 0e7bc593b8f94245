// Storage: ranges and scans of table rows, and the row filter by access that a scan applies.
import { z } from 'zod';
import type { Share } from '../domain/access';
import { queryAll, type Stored, type TablePort, type TableQuery } from './tablePort';

export interface Range<T> {
  items: T[];
  /** Whether storage has more rows after these. */
  more: boolean;
}

/**
 * Up to `limit` entities of a query (the query says where to start): one storage request. Storage may
 * answer a filtered query with an empty page that still carries a continuation; those are followed, so
 * a range is empty only at the end.
 */
export async function queryRange<T>(
  table: TablePort,
  query: TableQuery,
  limit: number,
  map: (stored: Stored) => T,
): Promise<Range<T>> {
  let continuation: string | undefined;
  for (;;) {
    const page = await table.query(query, { limit, ...(continuation !== undefined && { continuation }) });
    continuation = page.continuation;
    if (page.items.length > 0 || continuation === undefined)
      return { items: page.items.map(map), more: continuation !== undefined };
  }
}

/** The shares column of a stored row: its JSON list of shares (not the API's ShareList answer). */
export const sharesColumnSchema = z.array(
  z.object({ principalid: z.string(), principaltype: z.enum(['systemuser', 'team']), accessmask: z.number() }),
);

/** Who may see a row, by access: it reads the row's owner and shares only, the columns a scan adds for it. */
export type RowFilter = (row: { ownerid: string; shares: Share[] }) => boolean;

function filterColumns(entity: Record<string, unknown>): { ownerid: string; shares: Share[] } {
  return {
    ownerid: typeof entity.ownerid === 'string' ? entity.ownerid : '',
    shares: typeof entity.shares === 'string' ? sharesColumnSchema.parse(JSON.parse(entity.shares)) : [],
  };
}

/**
 * Walks every live row a query matches, 1,000 per request, reading only the named columns (and, with a
 * row filter, owner and shares), and hands each visible row to `visit`. Tombstones (deleted
 * connections the protocol still keeps) are never rows to a reader.
 */
export async function scanColumns(
  table: TablePort,
  query: TableQuery,
  columns: string[],
  visible: RowFilter | undefined,
  visit: (entity: Record<string, unknown>) => void,
): Promise<void> {
  const select = [...columns, 'tombstone', ...(visible ? ['ownerid', 'shares'] : [])];
  for await (const page of queryAll(table, { ...query, select })) {
    for (const { entity } of page) {
      if (entity.tombstone === true) continue;
      if (!visible || visible(filterColumns(entity))) visit(entity);
    }
  }
}

export async function countMatching(table: TablePort, query: TableQuery, visible?: RowFilter): Promise<number> {
  let count = 0;
  await scanColumns(table, query, [], visible, () => count++);
  return count;
}

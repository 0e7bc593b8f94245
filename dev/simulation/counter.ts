// Dev, simulation: a small optimistic-increment protocol for the scheduler's own tests and cost measurement.
import { isStorageStatus, type TablePort } from '../../shared/storage/tablePort';

/**
 * Optimistic increment of one counter: read, then insert or replace on the ETag read, again on
 * 409/412. A small protocol of the real shape, for the scheduler's tests and its cost measurement.
 */
export async function increment(table: TablePort): Promise<number> {
  for (;;) {
    const current = await table.get('c', 'counter');
    const n = current ? (current.entity.n as number) + 1 : 1;
    try {
      if (current)
        await table.write({ op: 'replace', entity: { partitionKey: 'c', rowKey: 'counter', n }, etag: current.etag });
      else await table.write({ op: 'insert', entity: { partitionKey: 'c', rowKey: 'counter', n } });
      return n;
    } catch (error) {
      if (!isStorageStatus(error, 409) && !isStorageStatus(error, 412)) throw error;
    }
  }
}

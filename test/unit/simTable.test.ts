import { describe, expect, it } from 'vitest';
import { SimTableService } from '../../dev/simulation/simTable';
import { ANY_ETAG, queryAll, type Stored, type TablePort, type TableQuery } from '../../shared/storage/tablePort';

// What the simulator has beyond the port (short pages, raw state); the port's own semantics are pinned
// to Azurite by test/integration/tablePort.conformance.test.ts.

async function fill(table: TablePort, partitionKey: string, n: number): Promise<string[]> {
  const keys = Array.from({ length: n }, (_, i) => `r${String(i).padStart(3, '0')}`);
  for (let i = 0; i < n; i += 100)
    await table.batch(
      keys.slice(i, i + 100).map((rowKey) => ({ op: 'insert', entity: { partitionKey, rowKey, n: 1 } })),
    );
  return keys;
}

async function pageSizes(
  table: TablePort,
  query: TableQuery,
  limit: number,
): Promise<{ sizes: number[]; keys: string[] }> {
  const sizes: number[] = [];
  const keys: string[] = [];
  let continuation: string | undefined;
  do {
    const page = await table.query(query, { limit, ...(continuation !== undefined && { continuation }) });
    sizes.push(page.items.length);
    keys.push(...page.items.map((item) => item.entity.rowKey));
    continuation = page.continuation;
  } while (continuation !== undefined);
  return { sizes, keys };
}

describe('short pages', () => {
  it('are off by default: every page but the last is full', async () => {
    const table = new SimTableService().table('t');
    await fill(table, 'p', 20);
    expect((await pageSizes(table, { partitionKey: 'p' }, 6)).sizes).toEqual([6, 6, 6, 2]);
  });

  it('cut pages short, empty ones included, and a walk still sees every entity once, in order', async () => {
    let sawShort = false;
    let sawEmptyWithContinuation = false;
    let sawTrailingEmpty = false;
    for (let seed = 1; seed <= 20; seed++) {
      const table = new SimTableService({ shortPages: { seed } }).table('t');
      const keys = await fill(table, 'p', 40);
      await fill(table, 'q', 3);
      const walk = await pageSizes(table, { partitionKey: 'p' }, 7);
      expect(walk.keys).toEqual(keys);
      expect(walk.sizes.every((size) => size <= 7)).toBe(true);
      sawShort ||= walk.sizes.slice(0, -1).some((size) => size < 7);
      sawEmptyWithContinuation ||= walk.sizes.slice(0, -1).includes(0);
      sawTrailingEmpty ||= walk.sizes[walk.sizes.length - 1] === 0;
      const items: Stored[] = [];
      for await (const page of queryAll(table, { where: [{ property: 'n', op: 'eq', value: 1 }] }, 5))
        items.push(...page);
      expect(items).toHaveLength(43);
    }
    expect({ sawShort, sawEmptyWithContinuation, sawTrailingEmpty }).toEqual({
      sawShort: true,
      sawEmptyWithContinuation: true,
      sawTrailingEmpty: true,
    });
  });

  it('are the same for the same seed, and differ between seeds', async () => {
    const sizes = async (seed: number) => {
      const table = new SimTableService({ shortPages: { seed } }).table('t');
      await fill(table, 'p', 60);
      return (await pageSizes(table, { partitionKey: 'p' }, 5)).sizes;
    };
    expect(await sizes(7)).toEqual(await sizes(7));
    expect(await sizes(7)).not.toEqual(await sizes(8));
  });

  it('never happen with probability 0', async () => {
    const table = new SimTableService({ shortPages: { seed: 1, probability: 0 } }).table('t');
    await fill(table, 'p', 20);
    expect((await pageSizes(table, { partitionKey: 'p' }, 6)).sizes).toEqual([6, 6, 6, 2]);
  });
});

describe('raw state', () => {
  it('dumps a table in key order, every partition, as copies', async () => {
    const service = new SimTableService();
    const table = service.table('t');
    await table.write({ op: 'insert', entity: { partitionKey: 'b', rowKey: '1', v: 1 } });
    const etag = await table.write({ op: 'insert', entity: { partitionKey: 'a', rowKey: '2', v: 2 } });
    const dump = service.dump('t');
    expect(dump.map((item) => `${item.entity.partitionKey}/${item.entity.rowKey}`)).toEqual(['a/2', 'b/1']);
    expect(dump[0]).toEqual({ entity: { partitionKey: 'a', rowKey: '2', v: 2 }, etag });
    (dump[0] as Stored).entity.v = 99;
    expect(service.dump('t')[0]?.entity.v).toBe(2);
    expect(service.tableNames()).toEqual(['t']);
  });

  it('puts entities as they are, with a chosen ETag or a fresh one, for building states', async () => {
    const service = new SimTableService();
    service.put('t', { partitionKey: 'p', rowKey: 'chosen', v: 1 }, 'W/"given"');
    const fresh = service.put('t', { partitionKey: 'p', rowKey: 'fresh', v: 1 });
    const table = service.table('t');
    expect(await table.get('p', 'chosen')).toEqual({
      entity: { partitionKey: 'p', rowKey: 'chosen', v: 1 },
      etag: 'W/"given"',
    });
    expect((await table.get('p', 'fresh'))?.etag).toBe(fresh);
    // A put replaces, like an upsert, and the ETag it was given is the one a condition must name.
    service.put('t', { partitionKey: 'p', rowKey: 'chosen', v: 2 }, 'W/"again"');
    await expect(
      table.write({ op: 'replace', entity: { partitionKey: 'p', rowKey: 'chosen' }, etag: 'W/"given"' }),
    ).rejects.toMatchObject({ status: 412 });
    await table.write({ op: 'delete', partitionKey: 'p', rowKey: 'chosen', etag: 'W/"again"' });
    expect(service.dump('t')).toHaveLength(1);
    expect(() => service.put('t', { partitionKey: 'p', rowKey: 'bad', timestamp: 'x' })).toThrow(/property name/);
  });

  it('keeps tables apart, and ETags unique across them', async () => {
    const service = new SimTableService();
    const a = await service.table('a').write({ op: 'upsert', entity: { partitionKey: 'p', rowKey: 'r' } });
    const b = await service.table('b').write({ op: 'upsert', entity: { partitionKey: 'p', rowKey: 'r' } });
    expect(a).not.toBe(b);
    await service.table('a').write({ op: 'delete', partitionKey: 'p', rowKey: 'r', etag: ANY_ETAG });
    expect(service.dump('a')).toEqual([]);
    expect(service.dump('b')).toHaveLength(1);
  });
});

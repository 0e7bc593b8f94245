import { TableClient } from '@azure/data-tables';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { SimTableService } from '../../dev/simulation/simTable';
import { AzureTable } from '../../shared/storage/azureTable';
import {
  ANY_ETAG,
  type Condition,
  type Page,
  queryAll,
  type Stored,
  StorageError,
  type TableEntity,
  type TablePort,
  type TableQuery,
  type WriteOp,
} from '../../shared/storage/tablePort';
import { uniqueTableName } from '../support/storage';

/**
 * One suite, two implementations: AzureTable on the real Azurite and the simulated table service. Every
 * semantic the simulator claims is a case here, so as long as both pass, the simulation cannot drift from
 * the emulator. Each implementation gets one table for the file; each case works in partitions of its own
 * (the few that scan a whole table open a fresh one).
 */
interface Subject {
  name: string;
  open: () => Promise<TablePort>;
}

const subjects: Subject[] = [
  {
    name: 'AzureTable on Azurite',
    open: async () => {
      // No SDK retries: what is pinned is the service's answer to one request.
      const client = TableClient.fromConnectionString(
        inject('azuriteConnectionString'),
        uniqueTableName('conformance'),
        {
          allowInsecureConnection: true,
          retryOptions: { maxRetries: 0 },
        },
      );
      await client.createTable();
      return new AzureTable(client);
    },
  },
  { name: 'SimTable', open: async () => new SimTableService().table(uniqueTableName('conformance')) },
];

interface Failure {
  status: number | undefined;
  code: string | undefined;
  failedIndex?: number;
}

/** The StorageError an action fails with, as status, code and (for a batch) the failing operation. */
async function failure(action: Promise<unknown>): Promise<Failure> {
  try {
    await action;
  } catch (error) {
    if (!(error instanceof StorageError)) throw error;
    const { code, failedIndex } = error.details;
    return { status: error.status, code, ...(failedIndex !== undefined && { failedIndex }) };
  }
  throw new Error('Expected the storage call to fail');
}

/** The port refused before any request: a plain Error, so nobody mistakes it for a fault of the service. */
async function refusal(action: Promise<unknown>): Promise<Error> {
  try {
    await action;
  } catch (error) {
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(StorageError);
    return error as Error;
  }
  throw new Error('Expected the call to be refused');
}

const e = (
  partitionKey: string,
  rowKey: string,
  properties: Record<string, string | number | boolean> = {},
): TableEntity => ({
  partitionKey,
  rowKey,
  ...properties,
});
const insert = (entity: TableEntity): WriteOp => ({ op: 'insert', entity });

/** Every entity a query matches, through pages of `limit`. */
async function all(table: TablePort, query: TableQuery, limit = 1000): Promise<Stored[]> {
  const items: Stored[] = [];
  for await (const page of queryAll(table, query, limit)) items.push(...page);
  return items;
}
const rowKeys = (items: Stored[]): string[] => items.map((item) => item.entity.rowKey);
const keysOf = (items: Stored[]): string[] => items.map((item) => `${item.entity.partitionKey}/${item.entity.rowKey}`);

/** An ETag of the right form that no entity has: a stale condition. */
const STALE_ETAG = 'W/"datetime\'2001-01-01T00%3A00%3A00.0000000Z\'"';

describe.each(subjects)('the table port on $name', ({ open }) => {
  let table: TablePort;
  let partitions = 0;
  /** A partition no other case uses. */
  const fresh = (): string => `p${String(++partitions).padStart(4, '0')}`;

  beforeAll(async () => {
    table = await open();
  });

  describe('point reads and conditional writes', () => {
    it('reads nothing where nothing was written', async () => {
      expect(await table.get(fresh(), 'r')).toBeUndefined();
    });

    it('reads back an inserted entity with the ETag the insert returned', async () => {
      const p = fresh();
      const etag = await table.write(insert(e(p, 'r', { name: 'x', n: 1 })));
      expect(etag).not.toBe('');
      expect(await table.get(p, 'r')).toEqual({ entity: e(p, 'r', { name: 'x', n: 1 }), etag });
    });

    it('refuses to insert over an existing entity with 409, leaving it as it was', async () => {
      const p = fresh();
      const etag = await table.write(insert(e(p, 'r', { v: 1 })));
      expect(await failure(table.write(insert(e(p, 'r', { v: 2 }))))).toEqual({
        status: 409,
        code: 'EntityAlreadyExists',
      });
      expect(await table.get(p, 'r')).toEqual({ entity: e(p, 'r', { v: 1 }), etag });
    });

    it('replaces with the current ETag: all properties, the old ones dropped, and a new ETag', async () => {
      const p = fresh();
      const first = await table.write(insert(e(p, 'r', { a: 1, b: 'gone' })));
      const second = await table.write({ op: 'replace', entity: e(p, 'r', { a: 2, c: true }), etag: first });
      expect(second).not.toBe(first);
      expect(await table.get(p, 'r')).toEqual({ entity: e(p, 'r', { a: 2, c: true }), etag: second });
    });

    it('refuses a replace with a stale ETag with 412, leaving the entity as it was', async () => {
      const p = fresh();
      const first = await table.write(insert(e(p, 'r', { v: 1 })));
      const second = await table.write({ op: 'replace', entity: e(p, 'r', { v: 2 }), etag: first });
      expect(await failure(table.write({ op: 'replace', entity: e(p, 'r', { v: 3 }), etag: first }))).toEqual({
        status: 412,
        code: 'UpdateConditionNotSatisfied',
      });
      expect(await failure(table.write({ op: 'replace', entity: e(p, 'r', { v: 3 }), etag: STALE_ETAG }))).toEqual({
        status: 412,
        code: 'UpdateConditionNotSatisfied',
      });
      expect(await table.get(p, 'r')).toEqual({ entity: e(p, 'r', { v: 2 }), etag: second });
    });

    it('replaces whatever version is there with ANY_ETAG', async () => {
      const p = fresh();
      await table.write(insert(e(p, 'r', { v: 1 })));
      const etag = await table.write({ op: 'replace', entity: e(p, 'r', { v: 2 }), etag: ANY_ETAG });
      expect(await table.get(p, 'r')).toEqual({ entity: e(p, 'r', { v: 2 }), etag });
    });

    it('answers 404 to a replace of a missing entity, whatever the ETag, and creates nothing', async () => {
      const p = fresh();
      expect(await failure(table.write({ op: 'replace', entity: e(p, 'r'), etag: ANY_ETAG }))).toEqual({
        status: 404,
        code: 'ResourceNotFound',
      });
      expect(await failure(table.write({ op: 'replace', entity: e(p, 'r'), etag: STALE_ETAG }))).toEqual({
        status: 404,
        code: 'ResourceNotFound',
      });
      expect(await table.get(p, 'r')).toBeUndefined();
    });

    it('answers 400 to an ETag that is not a weak ETag, before looking for the entity', async () => {
      const p = fresh();
      await table.write(insert(e(p, 'r')));
      for (const etag of ['bogus', '"1"']) {
        expect(await failure(table.write({ op: 'replace', entity: e(p, 'r'), etag }))).toEqual({
          status: 400,
          code: 'InvalidInput',
        });
        expect(await failure(table.write({ op: 'replace', entity: e(p, 'missing'), etag }))).toEqual({
          status: 400,
          code: 'InvalidInput',
        });
        expect(await failure(table.write({ op: 'delete', partitionKey: p, rowKey: 'r', etag }))).toEqual({
          status: 400,
          code: 'InvalidInput',
        });
        expect(await failure(table.write({ op: 'delete', partitionKey: p, rowKey: 'missing', etag }))).toEqual({
          status: 400,
          code: 'InvalidInput',
        });
      }
      expect(await table.get(p, 'r')).toBeDefined();
    });

    it('answers 412 to an empty ETag (the ETag a delete returns), even when the entity is missing', async () => {
      const p = fresh();
      await table.write(insert(e(p, 'r')));
      const precondition = { status: 412, code: 'UpdateConditionNotSatisfied' };
      expect(await failure(table.write({ op: 'replace', entity: e(p, 'r'), etag: '' }))).toEqual(precondition);
      expect(await failure(table.write({ op: 'replace', entity: e(p, 'missing'), etag: '' }))).toEqual(precondition);
      expect(await failure(table.write({ op: 'delete', partitionKey: p, rowKey: 'r', etag: '' }))).toEqual(
        precondition,
      );
      expect(await table.get(p, 'r')).toBeDefined();
    });

    it('upserts: inserts when missing, replaces every property when present, new ETag each time', async () => {
      const p = fresh();
      const first = await table.write({ op: 'upsert', entity: e(p, 'r', { a: 1, b: 2 }) });
      expect(await table.get(p, 'r')).toEqual({ entity: e(p, 'r', { a: 1, b: 2 }), etag: first });
      const second = await table.write({ op: 'upsert', entity: e(p, 'r', { c: 3 }) });
      expect(second).not.toBe(first);
      expect(await table.get(p, 'r')).toEqual({ entity: e(p, 'r', { c: 3 }), etag: second });
    });

    it('deletes with the current ETag or ANY_ETAG, returning an empty ETag', async () => {
      const p = fresh();
      const etag = await table.write(insert(e(p, 'a')));
      await table.write(insert(e(p, 'b')));
      expect(await table.write({ op: 'delete', partitionKey: p, rowKey: 'a', etag })).toBe('');
      expect(await table.write({ op: 'delete', partitionKey: p, rowKey: 'b', etag: ANY_ETAG })).toBe('');
      expect(await table.get(p, 'a')).toBeUndefined();
      expect(await table.get(p, 'b')).toBeUndefined();
    });

    it('refuses a delete with a stale ETag with 412, and a delete of a missing entity with 404', async () => {
      const p = fresh();
      const first = await table.write(insert(e(p, 'r', { v: 1 })));
      await table.write({ op: 'replace', entity: e(p, 'r', { v: 2 }), etag: first });
      expect(await failure(table.write({ op: 'delete', partitionKey: p, rowKey: 'r', etag: first }))).toEqual({
        status: 412,
        code: 'UpdateConditionNotSatisfied',
      });
      expect(await table.get(p, 'r')).toMatchObject({ entity: e(p, 'r', { v: 2 }) });
      expect(await failure(table.write({ op: 'delete', partitionKey: p, rowKey: 'missing', etag: ANY_ETAG }))).toEqual({
        status: 404,
        code: 'ResourceNotFound',
      });
      expect(
        await failure(table.write({ op: 'delete', partitionKey: p, rowKey: 'missing', etag: STALE_ETAG })),
      ).toEqual({ status: 404, code: 'ResourceNotFound' });
    });

    it('changes the ETag on every write, identical content included, and never reuses one', async () => {
      const p = fresh();
      const etags = [await table.write(insert(e(p, 'r', { v: 1 })))];
      expect((await table.get(p, 'r'))?.etag).toBe(etags[0]);
      for (let i = 0; i < 5; i++) {
        etags.push(
          await table.write({ op: 'replace', entity: e(p, 'r', { v: 1 }), etag: etags[etags.length - 1] as string }),
        );
        expect((await table.get(p, 'r'))?.etag).toBe(etags[etags.length - 1]);
      }
      etags.push(await table.write({ op: 'upsert', entity: e(p, 'r', { v: 1 }) }));
      await table.write({ op: 'delete', partitionKey: p, rowKey: 'r', etag: ANY_ETAG });
      etags.push(await table.write(insert(e(p, 'r', { v: 1 }))));
      expect(new Set(etags).size).toBe(etags.length);
      // The ETag from before the delete names no version of the entity inserted after it.
      expect(await failure(table.write({ op: 'replace', entity: e(p, 'r'), etag: etags[0] as string }))).toMatchObject({
        status: 412,
      });
    });

    it('leaves the ETag alone when a write fails', async () => {
      const p = fresh();
      const etag = await table.write(insert(e(p, 'r')));
      await failure(table.write(insert(e(p, 'r'))));
      await failure(table.write({ op: 'replace', entity: e(p, 'r'), etag: STALE_ETAG }));
      await failure(table.batch([insert(e(p, 'new')), insert(e(p, 'r'))]));
      expect((await table.get(p, 'r'))?.etag).toBe(etag);
    });
  });

  describe('keys', () => {
    it('orders RowKeys by UTF-16 code units: case, accents, and astral characters before U+E000', async () => {
      const p = fresh();
      const keys = ['a', 'B', 'b', 'é', 'z', '\uFFFF', '\u{1F600}', '\uE000', 'A', '0', '~', 'a b', 'ab', ' ', "it's"];
      await table.batch(keys.map((key) => insert(e(p, key))));
      const expected = [...keys].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
      // Code points would put U+1F600 after U+FFFF; code units put its surrogate (U+D83D) first.
      expect(expected.indexOf('\u{1F600}')).toBeLessThan(expected.indexOf('\uE000'));
      expect(rowKeys(await all(table, { partitionKey: p }))).toEqual(expected);
      expect(rowKeys(await all(table, { partitionKey: p }, 4))).toEqual(expected);
    });

    it('takes a quote in a key or a value in reads, writes and filters', async () => {
      const p = `${fresh()}'s`;
      const etag = await table.write(insert(e(p, "o'clock", { who: "O'Brien" })));
      expect(await table.get(p, "o'clock")).toEqual({ entity: e(p, "o'clock", { who: "O'Brien" }), etag });
      expect(
        rowKeys(
          await all(table, {
            partitionKey: p,
            rowKey: { ge: "o'" },
            where: [{ property: 'who', op: 'eq', value: "O'Brien" }],
          }),
        ),
      ).toEqual(["o'clock"]);
      await table.write({ op: 'delete', partitionKey: p, rowKey: "o'clock", etag: ANY_ETAG });
      expect(await table.get(p, "o'clock")).toBeUndefined();
    });

    it('takes empty keys, in reads, conditional writes, deletes and filters', async () => {
      const p = fresh();
      const etag = await table.write(insert(e(p, '', { v: 1 })));
      expect(await table.get(p, '')).toEqual({ entity: e(p, '', { v: 1 }), etag });
      const replaced = await table.write({ op: 'replace', entity: e(p, '', { v: 2 }), etag });
      expect(rowKeys(await all(table, { partitionKey: p, rowKey: { le: '' } }))).toEqual(['']);
      await table.write({ op: 'delete', partitionKey: p, rowKey: '', etag: replaced });
      expect(await table.get(p, '')).toBeUndefined();
      await table.write({ op: 'upsert', entity: e('', p) });
      expect(keysOf(await all(table, { partitionKey: '', rowKey: { ge: p, le: p } }))).toEqual([`/${p}`]);
    });

    it('refuses keys with \\ # ? or control characters in writes (400), and finds no such entity', async () => {
      const p = fresh();
      for (const key of ['a\\b', 'a#b', 'a?b', 'a\u0001b', 'a\u007fb', 'a\u0085b']) {
        expect(await failure(table.write(insert(e(p, key))))).toEqual({ status: 400, code: 'InvalidInput' });
        expect(await failure(table.write(insert(e(key, 'r'))))).toEqual({ status: 400, code: 'InvalidInput' });
        expect(await failure(table.write({ op: 'upsert', entity: e(p, key) }))).toEqual({
          status: 400,
          code: 'InvalidInput',
        });
        expect(await failure(table.write({ op: 'replace', entity: e(p, key), etag: ANY_ETAG }))).toEqual({
          status: 400,
          code: 'InvalidInput',
        });
        expect(await table.get(p, key)).toBeUndefined();
        expect(await failure(table.write({ op: 'delete', partitionKey: p, rowKey: key, etag: ANY_ETAG }))).toEqual({
          status: 404,
          code: 'ResourceNotFound',
        });
      }
    });

    it('takes keys of up to 512 characters and refuses longer ones with 400', async () => {
      const p = fresh();
      const longest = 'k'.repeat(512);
      await table.write(insert(e(p, longest)));
      expect((await table.get(p, longest))?.entity.rowKey).toBe(longest);
      expect(await failure(table.write(insert(e(p, `${longest}k`))))).toEqual({ status: 400, code: 'InvalidInput' });
      expect(await failure(table.write({ op: 'upsert', entity: e(p, `${longest}k`) }))).toEqual({
        status: 400,
        code: 'InvalidInput',
      });
      expect(await table.get(p, `${longest}k`)).toBeUndefined();
    });

    it("fails a / in a key: 400 for an insert, a bare 500 wherever the key is in the URL, as Azurite's router does", async () => {
      const p = fresh();
      expect(await failure(table.write(insert(e(p, 'a/b'))))).toEqual({ status: 400, code: 'InvalidInput' });
      const routing = { status: 500, code: undefined };
      expect(await failure(table.get(p, 'a/b'))).toEqual(routing);
      expect(await failure(table.get('a/b', 'r'))).toEqual(routing);
      expect(await failure(table.write({ op: 'upsert', entity: e(p, 'a/b') }))).toEqual(routing);
      expect(await failure(table.write({ op: 'replace', entity: e(p, 'a/b'), etag: ANY_ETAG }))).toEqual(routing);
      expect(await failure(table.write({ op: 'delete', partitionKey: p, rowKey: 'a/b', etag: ANY_ETAG }))).toEqual(
        routing,
      );
      // In a batch the keys travel in the body of each operation.
      expect(await failure(table.batch([{ op: 'upsert', entity: e(p, 'a/b') }]))).toEqual({
        status: 400,
        code: 'InvalidInput',
        failedIndex: 0,
      });
      expect(await failure(table.batch([{ op: 'delete', partitionKey: p, rowKey: 'a/b', etag: ANY_ETAG }]))).toEqual({
        status: 404,
        code: 'ResourceNotFound',
        failedIndex: 0,
      });
    });
  });

  describe('values', () => {
    it('stores strings, numbers and booleans and gives them back with the same JavaScript types', async () => {
      const p = fresh();
      const values = {
        int: 7,
        negative: -42,
        double: 1.5,
        beyondInt32: 3_000_000_000,
        belowInt32: -3_000_000_000,
        maxSafe: Number.MAX_SAFE_INTEGER,
        beyondSafe: 2 ** 53 + 2,
        tiny: 1e-7,
        huge: 1e21,
        zero: 0,
        yes: true,
        no: false,
        empty: '',
        text: 'Grüße, 世界 \u{1F600}',
      };
      await table.write(insert(e(p, 'r', values)));
      const got = (await table.get(p, 'r'))?.entity;
      expect(got).toEqual(e(p, 'r', values));
      for (const [name, value] of Object.entries(values)) expect(typeof got?.[name]).toBe(typeof value);
    });

    it('gives back negative zero as zero, as JSON does', async () => {
      const p = fresh();
      await table.write(insert(e(p, 'r', { z: -0 })));
      expect(Object.is((await table.get(p, 'r'))?.entity.z, 0)).toBe(true);
    });

    it('leaves out a property whose value is undefined', async () => {
      const p = fresh();
      const entity = { partitionKey: p, rowKey: 'r', kept: 1, dropped: undefined } as unknown as TableEntity;
      await table.write(insert(entity));
      expect((await table.get(p, 'r'))?.entity).toEqual(e(p, 'r', { kept: 1 }));
      expect(Object.keys((await table.get(p, 'r'))?.entity ?? {})).not.toContain('dropped');
    });

    it('stores strings of up to 32K UTF-16 code units and refuses longer ones with 400 PropertyValueTooLarge', async () => {
      const p = fresh();
      await table.write(insert(e(p, 'max', { s: 'x'.repeat(32 * 1024) })));
      expect(((await table.get(p, 'max'))?.entity.s as string).length).toBe(32 * 1024);
      const tooLarge = { status: 400, code: 'PropertyValueTooLarge' };
      expect(await failure(table.write(insert(e(p, 'long', { s: 'x'.repeat(32 * 1024 + 1) }))))).toEqual(tooLarge);
      // Counted in code units: 20,000 emoji are 40,000 of them.
      expect(
        await failure(table.write({ op: 'upsert', entity: e(p, 'emoji', { s: '\u{1F600}'.repeat(20_000) }) })),
      ).toEqual(tooLarge);
      expect(await failure(table.batch([insert(e(p, 'a')), insert(e(p, 'b', { s: 'x'.repeat(40_000) }))]))).toEqual({
        ...tooLarge,
        failedIndex: 1,
      });
      expect(await table.get(p, 'a')).toBeUndefined();
    });

    it('refuses, before any request, property names and values the service would drop or mangle', async () => {
      const p = fresh();
      const bad: Array<Record<string, string | number | boolean>> = [
        { timestamp: 'x' },
        { Timestamp: 'x' },
        { etag: 'x' },
        { PartitionKey: 'x' },
        { 'a-b': 1 },
        { '1x': 1 },
        { nan: Number.NaN },
        { inf: Number.POSITIVE_INFINITY },
      ];
      for (const properties of bad) {
        await refusal(table.write(insert(e(p, 'r', properties))));
        await refusal(table.write({ op: 'upsert', entity: e(p, 'r', properties) }));
        await refusal(table.batch([insert(e(p, 'r', properties))]));
      }
      await refusal(table.write(insert({ partitionKey: p, rowKey: 'r', nothing: null } as unknown as TableEntity)));
      expect(await table.get(p, 'r')).toBeUndefined();
    });

    it('hands out copies: changing an entity read, written or queried changes nothing stored', async () => {
      const p = fresh();
      const written = e(p, 'r', { v: 1 });
      await table.write(insert(written));
      written.v = 2;
      const read = await table.get(p, 'r');
      expect(read?.entity.v).toBe(1);
      if (read) read.entity.v = 3;
      const [queried] = await all(table, { partitionKey: p });
      expect(queried?.entity.v).toBe(1);
      if (queried) queried.entity.v = 4;
      const batched = e(p, 'b', { v: 1 });
      await table.batch([insert(batched)]);
      batched.v = 5;
      expect((await table.get(p, 'r'))?.entity.v).toBe(1);
      expect((await table.get(p, 'b'))?.entity.v).toBe(1);
    });
  });

  describe('batches', () => {
    it('applies inserts, replaces, upserts and deletes of one partition together, each with a new ETag', async () => {
      const p = fresh();
      const replaced = await table.write(insert(e(p, 'replace', { v: 1 })));
      const upserted = await table.write(insert(e(p, 'upsert', { v: 1 })));
      await table.write(insert(e(p, 'delete')));
      await table.batch([
        insert(e(p, 'insert', { v: 2 })),
        { op: 'replace', entity: e(p, 'replace', { v: 2 }), etag: replaced },
        { op: 'upsert', entity: e(p, 'upsert', { v: 2 }) },
        { op: 'delete', partitionKey: p, rowKey: 'delete', etag: ANY_ETAG },
      ]);
      const items = await all(table, { partitionKey: p });
      expect(items.map((item) => item.entity)).toEqual([
        e(p, 'insert', { v: 2 }),
        e(p, 'replace', { v: 2 }),
        e(p, 'upsert', { v: 2 }),
      ]);
      // New for each entity. Not necessarily distinct between entities: Azurite's ETag is the request's
      // millisecond plus four digits of process.hrtime(), and operations of one batch can share one.
      const etag = new Map(items.map((item) => [item.entity.rowKey, item.etag]));
      expect(etag.get('replace')).not.toBe(replaced);
      expect(etag.get('upsert')).not.toBe(upserted);
      expect(await failure(table.write({ op: 'replace', entity: e(p, 'replace'), etag: replaced }))).toMatchObject({
        status: 412,
      });
    });

    it('applies nothing when one operation fails, and says which: 409 for an insert over an entity', async () => {
      const p = fresh();
      const etag = await table.write(insert(e(p, 'exists', { v: 1 })));
      expect(
        await failure(table.batch([insert(e(p, 'n1')), insert(e(p, 'n2')), insert(e(p, 'exists', { v: 2 }))])),
      ).toEqual({
        status: 409,
        code: 'EntityAlreadyExists',
        failedIndex: 2,
      });
      expect(keysOf(await all(table, { partitionKey: p }))).toEqual([`${p}/exists`]);
      expect(await table.get(p, 'exists')).toEqual({ entity: e(p, 'exists', { v: 1 }), etag });
    });

    it('fails a replace of a missing entity with 404 and a stale ETag with 412, applying nothing', async () => {
      const p = fresh();
      const first = await table.write(insert(e(p, 'r', { v: 1 })));
      await table.write({ op: 'replace', entity: e(p, 'r', { v: 2 }), etag: first });
      expect(
        await failure(table.batch([insert(e(p, 'n')), { op: 'replace', entity: e(p, 'missing'), etag: ANY_ETAG }])),
      ).toEqual({
        status: 404,
        code: 'ResourceNotFound',
        failedIndex: 1,
      });
      expect(
        await failure(
          table.batch([
            { op: 'upsert', entity: e(p, 'n') },
            { op: 'replace', entity: e(p, 'r', { v: 3 }), etag: first },
          ]),
        ),
      ).toEqual({
        status: 412,
        code: 'UpdateConditionNotSatisfied',
        failedIndex: 1,
      });
      expect(await failure(table.batch([{ op: 'replace', entity: e(p, 'r', { v: 3 }), etag: 'bogus' }]))).toEqual({
        status: 400,
        code: 'InvalidInput',
        failedIndex: 0,
      });
      expect((await all(table, { partitionKey: p })).map((item) => item.entity)).toEqual([e(p, 'r', { v: 2 })]);
    });

    it('fails a delete of a missing entity with 404, applying nothing', async () => {
      const p = fresh();
      await table.write(insert(e(p, 'keep')));
      expect(
        await failure(
          table.batch([
            { op: 'delete', partitionKey: p, rowKey: 'keep', etag: ANY_ETAG },
            { op: 'delete', partitionKey: p, rowKey: 'missing', etag: ANY_ETAG },
          ]),
        ),
      ).toEqual({ status: 404, code: 'ResourceNotFound', failedIndex: 1 });
      expect(await table.get(p, 'keep')).toBeDefined();
    });

    it('fails an entity named twice with 400 InvalidDuplicateRow at its second appearance', async () => {
      const p = fresh();
      await table.write(insert(e(p, 'exists')));
      const duplicate = { status: 400, code: 'InvalidDuplicateRow' };
      expect(await failure(table.batch([insert(e(p, 'x')), { op: 'upsert', entity: e(p, 'x') }]))).toEqual({
        ...duplicate,
        failedIndex: 1,
      });
      // A repeat is found when its turn comes, even when the second operation would have failed anyway.
      expect(await failure(table.batch([{ op: 'upsert', entity: e(p, 'y') }, insert(e(p, 'y'))]))).toEqual({
        ...duplicate,
        failedIndex: 1,
      });
      expect(
        await failure(
          table.batch([
            { op: 'upsert', entity: e(p, 'exists') },
            { op: 'delete', partitionKey: p, rowKey: 'exists', etag: ANY_ETAG },
          ]),
        ),
      ).toEqual({ ...duplicate, failedIndex: 1 });
      expect(keysOf(await all(table, { partitionKey: p }))).toEqual([`${p}/exists`]);
    });

    it('reports the first failing operation in order, not the first kind of failure', async () => {
      const p = fresh();
      await table.write(insert(e(p, 'exists')));
      expect(await failure(table.batch([insert(e(p, 'exists')), insert(e(p, 'x')), insert(e(p, 'x'))]))).toEqual({
        status: 409,
        code: 'EntityAlreadyExists',
        failedIndex: 0,
      });
      expect(await failure(table.batch([insert(e(p, 'x')), insert(e(p, 'x')), insert(e(p, 'exists'))]))).toEqual({
        status: 400,
        code: 'InvalidDuplicateRow',
        failedIndex: 1,
      });
      expect(
        await failure(
          table.batch([{ op: 'delete', partitionKey: p, rowKey: 'missing', etag: ANY_ETAG }, insert(e(p, 'exists'))]),
        ),
      ).toEqual({ status: 404, code: 'ResourceNotFound', failedIndex: 0 });
    });

    it('takes 100 operations, and answers 101 with 400 InvalidInput at index 0 before looking at any', async () => {
      const p = fresh();
      await table.batch(Array.from({ length: 100 }, (_, i) => insert(e(p, `r${String(i).padStart(3, '0')}`))));
      expect(await all(table, { partitionKey: p })).toHaveLength(100);
      const q = fresh();
      await table.write(insert(e(q, 'exists')));
      const ops = [insert(e(q, 'exists')), ...Array.from({ length: 100 }, (_, i) => insert(e(q, `r${i}`)))];
      expect(await failure(table.batch(ops))).toEqual({ status: 400, code: 'InvalidInput', failedIndex: 0 });
      expect(await all(table, { partitionKey: q })).toHaveLength(1);
    });

    it('refuses, before any request, an empty batch, one spanning partitions, and a conditional delete', async () => {
      const p = fresh();
      const q = fresh();
      await table.write(insert(e(p, 'r')));
      await refusal(table.batch([]));
      await refusal(table.batch([insert(e(p, 'a')), insert(e(q, 'b'))]));
      await refusal(table.batch([insert(e(p, 'a')), { op: 'delete', partitionKey: p, rowKey: 'r', etag: STALE_ETAG }]));
      expect(keysOf(await all(table, { partitionKey: { ge: p, le: q } }))).toEqual([`${p}/r`]);
    });
  });

  describe('queries and pages', () => {
    /** Fills a partition with r00..r{n-1}, number `n` and parity `even` on each, in one batch. */
    async function fill(p: string, n: number): Promise<string[]> {
      const keys = Array.from({ length: n }, (_, i) => `r${String(i).padStart(2, '0')}`);
      await table.batch(keys.map((key, i) => insert(e(p, key, { n: i, even: i % 2 === 0 }))));
      return keys;
    }

    async function pages(query: TableQuery, limit: number): Promise<Page[]> {
      const result: Page[] = [];
      let continuation: string | undefined;
      do {
        const page = await table.query(query, { limit, ...(continuation !== undefined && { continuation }) });
        result.push(page);
        continuation = page.continuation;
      } while (continuation !== undefined);
      return result;
    }

    it('walks a partition three at a time: every entity once, in order, a continuation on all pages but the last', async () => {
      const p = fresh();
      const keys = await fill(p, 10);
      const walked = await pages({ partitionKey: p }, 3);
      expect(walked.map((page) => page.items.length)).toEqual([3, 3, 3, 1]);
      expect(walked.map((page) => page.continuation !== undefined)).toEqual([true, true, true, false]);
      expect(walked.flatMap((page) => rowKeys(page.items))).toEqual(keys);
    });

    it('ends without a continuation when the last page is exactly full', async () => {
      const p = fresh();
      await fill(p, 6);
      const walked = await pages({ partitionKey: p }, 3);
      expect(walked.map((page) => page.items.length)).toEqual([3, 3]);
      expect(walked[1]?.continuation).toBeUndefined();
    });

    it('answers an empty page with no continuation when nothing matches', async () => {
      expect(await table.query({ partitionKey: fresh() }, { limit: 5 })).toEqual({ items: [] });
    });

    it('resumes at the entity the continuation names: one inserted just before it is not seen, later ones are', async () => {
      const p = fresh();
      await table.batch(['a', 'b', 'd'].map((key) => insert(e(p, key))));
      const first = await table.query({ partitionKey: p }, { limit: 2 });
      expect(rowKeys(first.items)).toEqual(['a', 'b']);
      await table.write(insert(e(p, 'c')));
      await table.write({ op: 'delete', partitionKey: p, rowKey: 'd', etag: ANY_ETAG });
      await table.write(insert(e(p, 'e')));
      const second = await table.query(
        { partitionKey: p },
        { limit: 2, ...(first.continuation !== undefined && { continuation: first.continuation }) },
      );
      expect(rowKeys(second.items)).toEqual(['e']);
      expect(second.continuation).toBeUndefined();
    });

    it('keeps to its partition, whatever the neighbouring keys', async () => {
      const p = fresh();
      for (const partition of [p, `${p}0`, `${p} `, `${p}!`, p.slice(0, -1)])
        await table.write(insert(e(partition, 'r')));
      expect(keysOf(await all(table, { partitionKey: p }))).toEqual([`${p}/r`]);
    });

    it('walks a range of partitions in key order, with a RowKey range applied inside each', async () => {
      const base = fresh();
      const partitions = [`${base}-a`, `${base}-b`, `${base}-c`, `${base}-d`];
      for (const partition of partitions) await fill(partition, 4);
      const items = await all(
        table,
        { partitionKey: { gt: `${base}-a`, lt: `${base}-d` }, rowKey: { ge: 'r01', lt: 'r03' } },
        3,
      );
      expect(keysOf(items)).toEqual([`${base}-b/r01`, `${base}-b/r02`, `${base}-c/r01`, `${base}-c/r02`]);
      const inclusive = await all(table, { partitionKey: { ge: `${base}-b`, le: `${base}-c` }, rowKey: { gt: 'r02' } });
      expect(keysOf(inclusive)).toEqual([`${base}-b/r03`, `${base}-c/r03`]);
    });

    it('bounds RowKeys with gt, ge, lt and le', async () => {
      const p = fresh();
      await fill(p, 6);
      expect(rowKeys(await all(table, { partitionKey: p, rowKey: { gt: 'r01', le: 'r03' } }))).toEqual(['r02', 'r03']);
      expect(rowKeys(await all(table, { partitionKey: p, rowKey: { ge: 'r01', lt: 'r03' } }))).toEqual(['r01', 'r02']);
      expect(rowKeys(await all(table, { partitionKey: p, rowKey: { ge: 'r04' } }))).toEqual(['r04', 'r05']);
      expect(rowKeys(await all(table, { partitionKey: p, rowKey: { lt: 'r' } }))).toEqual([]);
      // A prefix: everything from 'r0' up to, not including, 'r0' followed by the highest code unit.
      expect(await all(table, { partitionKey: p, rowKey: { ge: 'r0', lt: 'r0\uffff' } })).toHaveLength(6);
    });

    it('walks every partition of a table when no partition is named', async () => {
      const empty = await open();
      await empty.write(insert(e('b', '2')));
      await empty.write(insert(e('a', '9')));
      await empty.write(insert(e('b', '1')));
      await empty.write(insert(e('c', '0')));
      const items: Stored[] = [];
      for await (const page of queryAll(empty, {}, 1)) items.push(...page);
      expect(keysOf(items)).toEqual(['a/9', 'b/1', 'b/2', 'c/0']);
    });

    it('filters by comparisons of numbers, and pages through the matches', async () => {
      const p = fresh();
      await fill(p, 10);
      const where = (op: Condition['op'], value: number) =>
        all(table, { partitionKey: p, where: [{ property: 'n', op, value }] }, 2);
      expect(rowKeys(await where('eq', 3))).toEqual(['r03']);
      expect(await where('ne', 3)).toHaveLength(9);
      expect(rowKeys(await where('gt', 7))).toEqual(['r08', 'r09']);
      expect(rowKeys(await where('ge', 8))).toEqual(['r08', 'r09']);
      expect(rowKeys(await where('lt', 2))).toEqual(['r00', 'r01']);
      expect(rowKeys(await where('le', 1))).toEqual(['r00', 'r01']);
      const evens = await all(table, { partitionKey: p, where: [{ property: 'even', op: 'eq', value: true }] }, 2);
      expect(rowKeys(evens)).toEqual(['r00', 'r02', 'r04', 'r06', 'r08']);
    });

    it('compares integers and doubles as numbers, large ones and exponent-sized ones included', async () => {
      const p = fresh();
      const values = { one: 1, half: 1.5, big: 3_000_000_000, tiny: 1e-7, huge: 1e21, negative: -2.5 };
      for (const [key, x] of Object.entries(values)) await table.write(insert(e(p, key, { x })));
      const match = async (op: Condition['op'], value: number) =>
        rowKeys(await all(table, { partitionKey: p, where: [{ property: 'x', op, value }] })).sort();
      expect(await match('eq', 1.0)).toEqual(['one']);
      expect(await match('gt', 1)).toEqual(['big', 'half', 'huge']);
      expect(await match('eq', 3_000_000_000)).toEqual(['big']);
      expect(await match('gt', 2_147_483_647)).toEqual(['big', 'huge']);
      expect(await match('eq', 1e-7)).toEqual(['tiny']);
      expect(await match('eq', 1e21)).toEqual(['huge']);
      expect(await match('lt', -2)).toEqual(['negative']);
    });

    it('filters strings by code-unit order, quotes and the empty string included', async () => {
      const p = fresh();
      const values = { apple: 'apple', Banana: 'Banana', empty: '', quote: "it's", accent: 'épée' };
      for (const [key, s] of Object.entries(values)) await table.write(insert(e(p, key, { s })));
      const match = async (op: Condition['op'], value: string) =>
        rowKeys(await all(table, { partitionKey: p, where: [{ property: 's', op, value }] })).sort();
      expect(await match('eq', "it's")).toEqual(['quote']);
      expect(await match('eq', '')).toEqual(['empty']);
      expect(await match('gt', 'a')).toEqual(['accent', 'apple', 'quote']);
      expect(await match('lt', 'a')).toEqual(['Banana', 'empty']);
      expect(await match('ne', '')).toEqual(['Banana', 'accent', 'apple', 'quote']);
    });

    it('never matches a missing property, whatever the comparison, ne included', async () => {
      const p = fresh();
      await table.write(insert(e(p, 'with', { x: 1, s: 'a', b: true })));
      await table.write(insert(e(p, 'without', { other: 1 })));
      for (const op of ['eq', 'ne', 'gt', 'ge', 'lt', 'le'] as const) {
        for (const value of [0, 'z', false]) {
          const property = typeof value === 'number' ? 'x' : typeof value === 'string' ? 's' : 'b';
          const items = await all(table, { partitionKey: p, where: [{ property, op, value }] });
          expect(rowKeys(items)).not.toContain('without');
        }
      }
      expect(rowKeys(await all(table, { partitionKey: p, where: [{ property: 'x', op: 'ne', value: 2 }] }))).toEqual([
        'with',
      ]);
    });

    it("compares a property with a value of another type as Azurite does: eq never, ne always, order by JavaScript's coercion", async () => {
      // Table Storage only promises results when the types agree; these pin Azurite's answers so the
      // simulation gives the same ones, not so that anyone relies on them.
      const p = fresh();
      const values = { int5: 5, str5: '5', strabc: 'abc', yes: true, no: false, empty: '' };
      for (const [key, x] of Object.entries(values)) await table.write(insert(e(p, key, { x })));
      const match = async (op: Condition['op'], value: string | number | boolean) =>
        rowKeys(await all(table, { partitionKey: p, where: [{ property: 'x', op, value }] })).sort();
      expect(await match('eq', 5)).toEqual(['int5']);
      expect(await match('eq', '5')).toEqual(['str5']);
      expect(await match('eq', true)).toEqual(['yes']);
      expect(await match('ne', 5)).toEqual(['empty', 'no', 'str5', 'strabc', 'yes']);
      expect(await match('gt', 3)).toEqual(['int5', 'str5']);
      expect(await match('lt', 3)).toEqual(['empty', 'no', 'yes']);
      expect(await match('ge', false)).toEqual(['empty', 'int5', 'no', 'str5', 'yes']);
      expect(await match('gt', '4')).toEqual(['int5', 'str5', 'strabc']);
    });

    it('takes the keys as properties in a condition', async () => {
      const p = fresh();
      await fill(p, 4);
      expect(
        rowKeys(await all(table, { partitionKey: p, where: [{ property: 'RowKey', op: 'ne', value: 'r01' }] })),
      ).toEqual(['r00', 'r02', 'r03']);
      expect(
        await all(table, { partitionKey: p, where: [{ property: 'PartitionKey', op: 'eq', value: p }] }),
      ).toHaveLength(4);
    });

    it('requires every condition to hold', async () => {
      const p = fresh();
      await fill(p, 10);
      const items = await all(table, {
        partitionKey: p,
        where: [
          { property: 'n', op: 'ge', value: 3 },
          { property: 'n', op: 'lt', value: 8 },
          { property: 'even', op: 'eq', value: false },
        ],
      });
      expect(rowKeys(items)).toEqual(['r03', 'r05', 'r07']);
    });

    it('selects properties: keys and ETag always, the named properties an entity has, nothing else', async () => {
      const p = fresh();
      const etag = await table.write(insert(e(p, 'r', { a: 1, b: 'two', c: true })));
      expect(await all(table, { partitionKey: p, select: ['a', 'c', 'absent'] })).toEqual([
        { entity: e(p, 'r', { a: 1, c: true }), etag },
      ]);
      expect(await all(table, { partitionKey: p, select: [] })).toEqual([{ entity: e(p, 'r'), etag }]);
      expect(
        await all(table, { partitionKey: p, select: ['b'], where: [{ property: 'a', op: 'eq', value: 1 }] }),
      ).toEqual([{ entity: e(p, 'r', { b: 'two' }), etag }]);
    });

    it('refuses, before any request, page sizes outside 1 to 1,000 and unfilterable property names', async () => {
      const p = fresh();
      for (const limit of [0, 1001, 2.5, -1]) await refusal(table.query({ partitionKey: p }, { limit }));
      for (const property of ['and', 'not', 'a-b', ''])
        await refusal(table.query({ partitionKey: p, where: [{ property, op: 'eq', value: 1 }] }, { limit: 1 }));
    });
  });
});

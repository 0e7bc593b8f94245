import { describe, expect, it } from 'vitest';
import {
  type ConnectionHalf,
  createConnectionSchema,
  newMasterHalf,
  reciprocalOf,
} from '../../shared/domain/connection';
import { connectionKey, type ConnectionPage, traverse } from '../../shared/useCases/graph';
import { buildObjectTypeRegistry } from '../../shared/domain/objectTypes';

const types = buildObjectTypeRegistry('base');
const owner = { id: '0e000000-0000-4000-8000-000000000001', teams: [], isAdmin: false };
const now = new Date('2026-11-23T00:00:00Z');
const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const connectionId = (n: number) => `c0000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

/** A tiny in-memory "table": both halves of each connection, listed per record in key order. */
function world(pairs: [number, number, { hidden?: boolean }?][]) {
  const halves: ConnectionHalf[] = [];
  const hidden = new Set<string>();
  pairs.forEach(([a, b, options], index) => {
    const master = newMasterHalf(
      createConnectionSchema.parse({
        connectionid: connectionId(index + 1),
        record1id: id(a),
        record1objecttypecode: a < 100 ? 'account' : 'contact',
        record1name: `R${a}`,
        record2id: id(b),
        record2objecttypecode: b < 100 ? 'account' : 'contact',
        record2name: `R${b}`,
      }),
      types,
      owner,
      now,
    );
    halves.push(master, reciprocalOf(master));
    if (options?.hidden) hidden.add(master.connectionid);
  });
  const calls: { recordId: string; top: number; first: boolean }[] = [];
  const counts: { recordId: string; first: boolean }[] = [];
  const readable = (recordId: string) =>
    halves
      .filter((half) => half.record1id === recordId && !hidden.has(connectionKey(half)))
      .sort((x, y) => x.connectionid.localeCompare(y.connectionid));
  return {
    calls,
    counts,
    listPage: async (recordId: string, top: number, first: boolean): Promise<ConnectionPage> => {
      calls.push({ recordId, top, first });
      const all = readable(recordId);
      const items = all.slice(0, top);
      const more = all.length > top;
      return { items, more, ...(more && { skiptoken: `after:${items.at(-1)?.connectionid}` }) };
    },
    count: async (recordId: string, first: boolean): Promise<number> => {
      counts.push({ recordId, first });
      return readable(recordId).length;
    },
  };
}

const nodeIds = (graph: { nodes: { recordid: string }[] }) => graph.nodes.map((node) => node.recordid);
const edgePairs = (graph: { edges: { half: ConnectionHalf }[] }) =>
  graph.edges.map(({ half }) => `${half.record1id.slice(-3)}-${half.record2id.slice(-3)}`);

describe('traverse: the breadth-first walk behind GET /records/{id}/graph', () => {
  // 1 is connected to 2, 3 and 101; 2 to 3 (a triangle) and 4; 4 to 5; 101 to 102.
  const pairs: [number, number][] = [
    [1, 2],
    [1, 3],
    [1, 101],
    [2, 3],
    [2, 4],
    [4, 5],
    [101, 102],
  ];

  it('depth 1: the record, its neighbours and one edge per connection, in one page call', async () => {
    const fake = world(pairs);
    const graph = await traverse(id(1), { depth: 1, limit: 100, top: 100 }, fake.listPage);
    expect(nodeIds(graph)).toEqual([id(1), id(2), id(3), id(101)]);
    expect(edgePairs(graph)).toEqual(['001-002', '001-003', '001-101']);
    expect(graph.nodes[0]).toMatchObject({ depth: 0, expanded: true, hasmore: false, objecttypecode: 1, name: 'R1' });
    expect(graph.nodes.slice(1).every((node) => node.depth === 1 && !node.expanded)).toBe(true);
    expect(graph.nodes.find((node) => node.recordid === id(101))).toMatchObject({ objecttypecode: 2, name: 'R101' });
    expect(graph.truncated).toBe(false);
    expect(graph.truncatedby).toEqual([]);
    expect(fake.calls).toEqual([{ recordId: id(1), top: 100, first: true }]);
  });

  it('depth 2: expands every neighbour once, each connection an edge once, oriented from the record nearer the root', async () => {
    const fake = world(pairs);
    const graph = await traverse(id(1), { depth: 2, limit: 100, top: 100 }, fake.listPage);
    expect(nodeIds(graph)).toEqual([id(1), id(2), id(3), id(101), id(4), id(102)]);
    expect(edgePairs(graph)).toEqual(['001-002', '001-003', '001-101', '002-003', '002-004', '101-102']);
    expect(graph.edges.map((edge) => edge.depth)).toEqual([1, 1, 1, 2, 2, 2]);
    expect(fake.calls.map((call) => call.recordId)).toEqual([id(1), id(2), id(3), id(101)]);
    expect(fake.calls.map((call) => call.first)).toEqual([true, false, false, false]);
    // Records at the last level are found, not expanded: 5 (three hops away) is not there.
    expect(nodeIds(graph)).not.toContain(id(5));
    expect(graph.nodes.filter((node) => node.expanded).map((node) => node.recordid)).toEqual([
      id(1),
      id(2),
      id(3),
      id(101),
    ]);
  });

  it('keeps to the node limit, says so, and expands no further level once it is reached', async () => {
    const fake = world(pairs);
    const graph = await traverse(id(1), { depth: 2, limit: 3, top: 100 }, fake.listPage);
    expect(nodeIds(graph)).toEqual([id(1), id(2), id(3)]);
    expect(edgePairs(graph)).toEqual(['001-002', '001-003']); // no edge to a record left out
    expect(graph.truncated).toBe(true);
    expect(graph.truncatedby).toEqual(['limit']);
    expect(fake.calls).toHaveLength(1);
    const alone = await traverse(id(1), { depth: 1, limit: 1, top: 100 }, world(pairs).listPage);
    expect(nodeIds(alone)).toEqual([id(1)]);
    expect(alone.edges).toEqual([]);
    expect(alone.truncatedby).toEqual(['limit']);
  });

  it('reads one page per record: a record with more connections than top is marked, with where its next page starts', async () => {
    const star: [number, number][] = Array.from({ length: 7 }, (_, index) => [1, 200 + index] as [number, number]);
    const fake = world(star);
    const graph = await traverse(id(1), { depth: 2, limit: 100, top: 5 }, fake.listPage);
    expect(graph.nodes).toHaveLength(6);
    expect(graph.nodes[0]).toMatchObject({ hasmore: true, skiptoken: `after:${connectionId(5)}` });
    expect(graph.truncatedby).toEqual(['top']);
    // Five neighbours expanded at the second level, each with one connection (back to the root, already an edge).
    expect(fake.calls).toHaveLength(6);
    expect(graph.edges).toHaveLength(5);
  });

  it('never reaches a record through a connection the page function does not return (what the caller cannot read)', async () => {
    // 1 - 2 is hidden; 2 is also connected to 3, visibly; 3 is reached only through 2.
    const fake = world([
      [1, 2, { hidden: true }],
      [1, 4],
      [2, 3],
    ]);
    const graph = await traverse(id(1), { depth: 2, limit: 100, top: 100 }, fake.listPage);
    expect(nodeIds(graph)).toEqual([id(1), id(4)]);
    expect(edgePairs(graph)).toEqual(['001-004']);
    expect(fake.calls.map((call) => call.recordId)).not.toContain(id(2));
  });

  it('counts only what a page did not already show: records not expanded and records with more than a page', async () => {
    const star: [number, number][] = [
      ...Array.from({ length: 7 }, (_, index) => [1, 200 + index] as [number, number]),
      [200, 300],
      [201, 301],
    ];
    const fake = world(star);
    const graph = await traverse(id(1), { depth: 1, limit: 100, top: 5, count: fake.count }, fake.listPage);
    expect(graph.nodes[0]).toMatchObject({ connectioncount: 7, hasmore: true });
    expect(graph.nodes.find((node) => node.recordid === id(200))?.connectioncount).toBe(2);
    expect(graph.nodes.find((node) => node.recordid === id(202))?.connectioncount).toBe(1);
    expect(fake.counts).toHaveLength(6); // the root (more than a page) and its five neighbours on the page
    expect(fake.counts.filter((entry) => entry.first).map((entry) => entry.recordId)).toEqual([id(1)]);

    const small = world(pairs);
    const whole = await traverse(id(1), { depth: 2, limit: 100, top: 100, count: small.count }, small.listPage);
    expect(whole.nodes.map((node) => node.connectioncount)).toEqual([3, 3, 2, 2, 2, 1]);
    expect(small.counts.map((entry) => entry.recordId)).toEqual([id(4), id(102)]); // only the unexpanded ones
  });

  it('answers a record without readable connections with the record alone, its type unknown', async () => {
    const graph = await traverse(id(9), { depth: 2, limit: 100, top: 100 }, world(pairs).listPage);
    expect(graph.nodes).toEqual([
      { recordid: id(9), objecttypecode: null, name: null, depth: 0, expanded: true, hasmore: false },
    ]);
    expect(graph.edges).toEqual([]);
    expect(graph.truncated).toBe(false);
  });
});

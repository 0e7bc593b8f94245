import type { Caller } from '../domain/caller';
import { type ConnectionHalf, type ConnectionView, toView } from '../domain/connection';
import type { ListQuery } from './connectionQueries';
import type { ConnectionService } from './connections';
import type { ObjectTypeRegistry } from '../domain/objectTypes';
import type { RoleCatalog } from '../domain/roles';

/**
 * The graph around a record: a breadth-first walk over connections, one page of one partition query
 * per expanded record, so its cost follows the answer (the records it shows) and never the table. It
 * knows nothing of storage or access: it is given a function that lists one page of a record's
 * connections, already filtered to what the caller may read, so a connection the caller cannot read is
 * never an edge and no record is reached through one.
 */

/** One page of a record's connections, as the record sees them (record 1 is the record). */
export interface ConnectionPage {
  items: ConnectionHalf[];
  /** Whether the record has more connections than the page holds. */
  more: boolean;
  /** Where the next page starts, for the list API's nextLink. */
  skiptoken?: string;
}

/**
 * Lists one page (at most `top`) of a record's connections. `first` is true for the root's own page, so
 * filters can apply to the first hop only.
 */
export type ListPage = (recordId: string, top: number, first: boolean) => Promise<ConnectionPage>;

/** Counts a record's connections, with the same filters as its page (`first` for the root). */
export type CountConnections = (recordId: string, first: boolean) => Promise<number>;

export const MAX_DEPTH = 2;
export const MAX_NODE_LIMIT = 1000;
export const DEFAULT_NODE_LIMIT = 200;
export const DEFAULT_GRAPH_TOP = 100;
/** Expansions of one level run this many at a time. */
const CONCURRENCY = 8;

export interface GraphOptions {
  /** Hops from the root: records at distance < depth are expanded. */
  depth: number;
  /** At most this many nodes, the root included. */
  limit: number;
  /** At most this many connections read per expanded record. */
  top: number;
  /** Count every node's connections (exactly, even beyond the page). */
  count?: CountConnections;
}

export interface GraphNode {
  recordid: string;
  /** Null when nothing the caller can read names the record's type (a root without connections). */
  objecttypecode: number | null;
  name: string | null;
  /** Hops from the root. */
  depth: number;
  /** Whether its connections were read (the page of them, when `hasmore`). */
  expanded: boolean;
  /** Whether it has more connections than were read (expanded nodes only). */
  hasmore: boolean;
  /** Where its next page starts, when `hasmore`. */
  skiptoken?: string;
  /** Its number of connections, when counts were asked for. */
  connectioncount?: number;
}

export interface GraphEdge {
  /** The connection as the record nearer the root sees it: record 1 is that record. */
  half: ConnectionHalf;
  /** The hop it was found on (1 = a connection of the root). */
  depth: number;
}

export type Truncation = 'limit' | 'top';

export interface Graph {
  recordid: string;
  depth: number;
  nodes: GraphNode[];
  edges: GraphEdge[];
  /** Whether the answer leaves something out; `truncatedby` says what. */
  truncated: boolean;
  /** 'limit': records left out because of the node limit; 'top': an expanded record has more connections than its page. */
  truncatedby: Truncation[];
}

/** The connection both halves belong to: the master's id. */
export const connectionKey = (half: ConnectionHalf): string =>
  half.ismaster ? half.connectionid : half.relatedconnectionid;

async function mapLimited<T, R>(items: T[], limit: number, action: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await action(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * Walks the graph level by level. Each expanded record costs one `listPage` call (one page, at most
 * `top` connections); records at the last level are not expanded. Once `limit` nodes are in, no further
 * record is added and no further level is expanded, so the number of calls is at most the number of
 * nodes returned. The order is deterministic: levels in order, each level's records in the order they
 * were found, each page in the order the list returns it.
 */
export async function traverse(rootId: string, options: GraphOptions, listPage: ListPage): Promise<Graph> {
  const nodes = new Map<string, GraphNode>();
  const edges = new Map<string, GraphEdge>();
  const truncatedby = new Set<Truncation>();
  const pageSizes = new Map<string, number>();
  nodes.set(rootId, { recordid: rootId, objecttypecode: null, name: null, depth: 0, expanded: false, hasmore: false });

  let frontier = [rootId];
  for (let level = 0; level < options.depth && frontier.length > 0 && !truncatedby.has('limit'); level++) {
    const pages = await mapLimited(frontier, CONCURRENCY, (recordId) => listPage(recordId, options.top, level === 0));
    const next: string[] = [];
    frontier.forEach((recordId, index) => {
      const page = pages[index] as ConnectionPage;
      const node = nodes.get(recordId) as GraphNode;
      node.expanded = true;
      node.hasmore = page.more;
      if (page.more) {
        truncatedby.add('top');
        if (page.skiptoken) node.skiptoken = page.skiptoken;
      }
      pageSizes.set(recordId, page.items.length);
      for (const half of page.items) {
        node.objecttypecode ??= half.record1objecttypecode;
        node.name ??= half.record1name;
        let other = nodes.get(half.record2id);
        if (!other) {
          if (nodes.size >= options.limit) {
            truncatedby.add('limit');
            continue;
          }
          other = {
            recordid: half.record2id,
            objecttypecode: half.record2objecttypecode,
            name: half.record2name,
            depth: level + 1,
            expanded: false,
            hasmore: false,
          };
          nodes.set(other.recordid, other);
          next.push(other.recordid);
        }
        other.name ??= half.record2name;
        const key = connectionKey(half);
        if (!edges.has(key)) edges.set(key, { half, depth: level + 1 });
      }
    });
    frontier = next;
  }

  const count = options.count;
  if (count) {
    // An expanded record whose page was complete needs no count: the page is all of them.
    const counted = [...nodes.values()].filter((node) => !node.expanded || node.hasmore);
    const totals = await mapLimited(counted, CONCURRENCY, (node) => count(node.recordid, node.depth === 0));
    counted.forEach((node, index) => (node.connectioncount = totals[index]));
    for (const node of nodes.values())
      if (node.connectioncount === undefined) node.connectioncount = pageSizes.get(node.recordid) ?? 0;
  }

  return {
    recordid: rootId,
    depth: options.depth,
    nodes: [...nodes.values()],
    edges: [...edges.values()],
    truncated: truncatedby.size > 0,
    truncatedby: [...truncatedby].sort(),
  };
}

/** The graph endpoint's filters: role and type select the record's own connections, state and date every hop's. */
export interface GraphQuery {
  depth: number;
  limit: number;
  top: number;
  count?: boolean | undefined;
  roleid?: string | undefined;
  otherroleid?: string | undefined;
  othertypecode?: string | number | undefined;
  statecode?: number | undefined;
  activeon?: string | undefined;
}

/** The list filters of a hop: the first hop takes them all, later hops only state and date. */
export function hopFilters(query: GraphQuery, first: boolean): Omit<ListQuery, 'recordId'> {
  return {
    ...(query.statecode !== undefined && { statecode: query.statecode }),
    ...(query.activeon !== undefined && { activeon: query.activeon }),
    ...(first && query.roleid !== undefined && { roleid: query.roleid }),
    ...(first && query.otherroleid !== undefined && { otherroleid: query.otherroleid }),
    ...(first && query.othertypecode !== undefined && { othertypecode: query.othertypecode }),
  };
}

/**
 * The graph as the caller may see it, built on ConnectionService.list: each expanded record is one list
 * page (one partition query in the usual case), and list leaves out what the caller cannot read. A count
 * is a list of one row with count=true (one page read plus a key-only count).
 */
export function recordGraph(
  connections: Pick<ConnectionService, 'list'>,
  caller: Caller,
  recordId: string,
  query: GraphQuery,
): Promise<Graph> {
  const listPage: ListPage = async (id, top, first) => {
    const page = await connections.list({ recordId: id, ...hopFilters(query, first) }, caller, { top });
    return {
      items: page.items,
      more: page.skiptoken !== undefined,
      ...(page.skiptoken !== undefined && { skiptoken: page.skiptoken }),
    };
  };
  const count: CountConnections = async (id, first) =>
    (await connections.list({ recordId: id, ...hopFilters(query, first) }, caller, { top: 1, count: true })).count ?? 0;
  return traverse(
    recordId,
    { depth: query.depth, limit: query.limit, top: query.top, ...(query.count && { count }) },
    listPage,
  );
}

export interface GraphNodeView extends Omit<GraphNode, 'skiptoken'> {
  objecttypename: string | null;
  nextLink?: string;
}

export interface GraphEdgeView extends ConnectionView {
  record1rolename: string | null;
  record2rolename: string | null;
  depth: number;
}

export interface GraphView {
  recordid: string;
  depth: number;
  truncated: boolean;
  truncatedby: Truncation[];
  nodes: GraphNodeView[];
  edges: GraphEdgeView[];
}

/**
 * What clients see: type names, role names, and for a record with more connections than were read the
 * list URL that reads on from there (same filters, so the list API accepts the skip token).
 */
export function toGraphView(
  graph: Graph,
  query: GraphQuery,
  context: { types: ObjectTypeRegistry; catalog: RoleCatalog; requestUrl: string },
): GraphView {
  const roleName = (roleId: string | null) => (roleId === null ? null : (context.catalog.get(roleId)?.name ?? null));
  const nextLink = (node: GraphNode): string => {
    const url = new URL(`/api/records/${node.recordid}/connections`, context.requestUrl);
    for (const [name, value] of Object.entries(hopFilters(query, node.depth === 0)))
      url.searchParams.set(name, String(value));
    url.searchParams.set('top', String(query.top));
    url.searchParams.set('skiptoken', node.skiptoken ?? '');
    return url.toString();
  };
  return {
    recordid: graph.recordid,
    depth: graph.depth,
    truncated: graph.truncated,
    truncatedby: graph.truncatedby,
    nodes: graph.nodes.map(({ skiptoken, ...node }) => ({
      ...node,
      objecttypename: node.objecttypecode === null ? null : (context.types.resolve(node.objecttypecode)?.name ?? null),
      ...(skiptoken !== undefined && { nextLink: nextLink({ ...node, skiptoken }) }),
    })),
    edges: graph.edges.map(({ half, depth }) => ({
      ...toView(half, context.types),
      record1rolename: roleName(half.record1roleid),
      record2rolename: roleName(half.record2roleid),
      depth,
    })),
  };
}

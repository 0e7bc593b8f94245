// The connection explorer: draws a record's connections with cytoscape (loaded by index.html), from the
// app's own API. Locally (npm start) it makes the x-ms-client-principal header from the caller picker;
// in Azure it sends no header: the App Service Authentication session cookie identifies the caller.
import { edgeColours, groupStyle, styleOfType, textColour, typeStyles } from './palette.js';

/* global cytoscape */

const API = '/api';
/** Connections drawn per record or group at a time; a record with more is grouped. */
const PAGE = 50;
/** Records drawn at most, whatever is clicked: beyond it, the filters and the table. */
const MAX_DRAWN = 400;
const CONCURRENCY = 6;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const mode = document.documentElement.dataset.mode === 'local' ? 'local' : 'azure';

const presets = [
  {
    key: 'walkthrough',
    label: 'README walkthrough user',
    id: '11111111-1111-4111-8111-111111111111',
    teams: '',
    admin: false,
  },
  {
    key: 'second',
    label: 'Second user (one connection shared with them)',
    id: '22222222-2222-4222-8222-222222222222',
    teams: '',
    admin: false,
  },
  {
    key: 'admin',
    label: 'Administrator (sees everything)',
    id: 'ad000000-0000-4000-8000-0000000000ad',
    teams: '',
    admin: true,
  },
  { key: 'custom', label: 'Someone else…', id: '', teams: '', admin: false },
];

const $ = (id) => document.getElementById(id);

/** Builds an element; children are nodes or text (never parsed as HTML). */
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else if (name === 'dataset') Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat())
    if (child !== undefined && child !== null) element.append(child instanceof Node ? child : String(child));
  return element;
}

const number = new Intl.NumberFormat();
const plural = (count, one, many = `${one}s`) => `${number.format(count)} ${count === 1 ? one : many}`;
const shortId = (id) => id.slice(0, 8);
const dateOnly = (value) => (value ? value.slice(0, 10) : '');

async function mapLimited(items, limit, action) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await action(items[index], index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

// ---------------------------------------------------------------------------------------------------
// The caller (local development only) and calls to the API.

function loadCaller() {
  try {
    const saved = JSON.parse(localStorage.getItem('explorer.caller') ?? 'null');
    if (saved && typeof saved.id === 'string') return saved;
  } catch {
    // a damaged entry: start again from the walkthrough's caller
  }
  const { key, id, teams, admin } = presets[0];
  return { preset: key, id, teams, admin };
}

let caller = loadCaller();

/** The header App Service Authentication would set, made by hand: trusted only in local development mode. */
function principalHeader() {
  const claims = [{ typ: 'http://schemas.microsoft.com/identity/claims/objectidentifier', val: caller.id.trim() }];
  for (const team of caller.teams
    .split(',')
    .map((value) => value.trim())
    .filter(Boolean))
    claims.push({ typ: 'groups', val: team });
  if (caller.admin) claims.push({ typ: 'roles', val: 'Connections.Admin' });
  return btoa(JSON.stringify({ auth_typ: 'aad', role_typ: 'roles', claims }));
}

class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail ?? `The API answered ${status}.`);
    this.status = status;
    this.code = problem?.code;
  }
}

async function api(pathOrUrl) {
  const url = pathOrUrl.startsWith('http')
    ? new URL(pathOrUrl).pathname + new URL(pathOrUrl).search
    : `${API}${pathOrUrl}`;
  const headers = { accept: 'application/json' };
  if (mode === 'local') headers['x-ms-client-principal'] = principalHeader();
  const response = await fetch(url, { headers, credentials: 'same-origin' });
  const body = response.headers.get('content-type')?.includes('json') ? await response.json() : undefined;
  if (response.status === 401) {
    if (mode === 'azure') showSignIn();
    throw new ApiError(401, body);
  }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

function showSignIn() {
  const link = $('signin-link');
  link.href = `/.auth/login/aad?post_login_redirect_uri=${encodeURIComponent(location.pathname + location.search)}`;
  $('signin').hidden = false;
}

// ---------------------------------------------------------------------------------------------------
// State: what is drawn, and the filters.

const params = new URLSearchParams(location.search);
const state = {
  root: params.get('record')?.toLowerCase() ?? '',
  filters: {
    roleid: params.get('roleid') ?? '',
    othertypecode: params.get('othertypecode') ?? '',
    statecode: params.get('statecode') ?? '',
    activeon: params.get('activeon') ?? '',
  },
  groupBy: params.get('groupby') === 'type' ? 'type' : 'role',
  /** recordid -> { recordid, objecttypecode, objecttypename, name, depth, ring, expanded, hasmore, grouped, connectioncount, nextLink } */
  records: new Map(),
  /** connection key (the master's id) -> the edge as the graph API gives it, plus `drawnFrom` */
  connections: new Map(),
  /** group id -> { id, owner, kind, value, label, count, shown, loaded, nextLink, expandable } */
  groups: new Map(),
  capped: false,
  types: new Map(),
  roleNames: undefined,
};

const connectionKey = (edge) => (edge.ismaster ? edge.connectionid : edge.relatedconnectionid);
const recordNodeId = (id) => `r-${id}`;
const today = () => new Date().toISOString();

/** The filters on the centre record's own connections (all of them) and on every other hop (state, date). */
function filterParams(first) {
  const query = new URLSearchParams();
  const { roleid, othertypecode, statecode, activeon } = state.filters;
  if (statecode) query.set('statecode', statecode);
  if (activeon) query.set('activeon', activeon);
  if (first && roleid) query.set('roleid', roleid);
  if (first && othertypecode) query.set('othertypecode', othertypecode);
  return query;
}

const typeName = (code) =>
  code === null || code === undefined ? 'unknown type' : (state.types.get(code) ?? String(code));
const recordLabel = (record) => record.name ?? `Record ${shortId(record.recordid)}`;

function inEffect(edge) {
  const instant = state.filters.activeon ? new Date(state.filters.activeon).toISOString() : today();
  return (
    (edge.effectivestart === null || edge.effectivestart <= instant) &&
    (edge.effectiveend === null || instant <= edge.effectiveend)
  );
}

function edgeState(edge) {
  if (edge.statecode === 1) return 'inactive';
  return inEffect(edge) ? 'current' : 'out-of-date';
}

// ---------------------------------------------------------------------------------------------------
// The graph.

/** A white count drawn inside a node: the number of connections of a record not yet expanded. */
function badge(count) {
  const text = count > 9999 ? `${Math.round(count / 1000)}k` : String(count);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"><text x="20" y="25" font-family="Arial, sans-serif" font-size="${text.length > 3 ? 11 : 14}" font-weight="700" text-anchor="middle" fill="#ffffff">${text}</text></svg>`;
  return `data:image/svg+xml;utf8,${encodeURIComponent(svg)}`;
}

let cy;

function createGraph() {
  cy = cytoscape({
    container: $('graph'),
    minZoom: 0.15,
    maxZoom: 1.4,
    boxSelectionEnabled: false,
    autoungrabify: false,
    style: [
      {
        selector: 'node',
        style: {
          label: 'data(label)',
          'text-wrap': 'wrap',
          'text-max-width': 140,
          'text-valign': 'bottom',
          'text-margin-y': 4,
          'font-size': 13,
          color: textColour,
          'text-background-color': '#ffffff',
          'text-background-opacity': 0.85,
          'text-background-padding': 1,
          'background-color': 'data(colour)',
          shape: 'data(shape)',
          width: 34,
          height: 34,
          'border-width': 1,
          'border-color': '#ffffff',
        },
      },
      {
        selector: 'node[badge]',
        style: { 'background-image': 'data(badge)', 'background-fit': 'contain', 'background-clip': 'none' },
      },
      {
        selector: 'node.root',
        style: {
          width: 50,
          height: 50,
          'border-width': 4,
          'border-color': textColour,
          'font-size': 15,
          'font-weight': 'bold',
        },
      },
      {
        selector: 'node.group',
        style: { width: 46, height: 30, 'border-width': 2, 'border-style': 'dashed', 'border-color': textColour },
      },
      {
        selector: 'node:selected',
        style: {
          'overlay-color': '#0f5ea8',
          'overlay-opacity': 0.25,
          'overlay-padding': 6,
          'border-width': 4,
          'border-color': '#0f5ea8',
        },
      },
      {
        selector: 'edge',
        style: {
          width: 2,
          'line-color': edgeColours.current,
          'curve-style': 'bezier',
          'target-arrow-shape': 'none',
          'source-label': 'data(sourceRole)',
          'target-label': 'data(targetRole)',
          'source-text-offset': 46,
          'target-text-offset': 46,
          label: 'data(note)',
          'font-size': 11,
          color: textColour,
          'text-background-color': '#ffffff',
          'text-background-opacity': 0.9,
          'text-background-padding': 1,
          'text-rotation': 'autorotate',
        },
      },
      {
        selector: 'edge.inactive',
        style: { 'line-style': 'dashed', 'line-dash-pattern': [8, 5], 'line-color': edgeColours.inactive },
      },
      {
        selector: 'edge.out-of-date',
        style: { 'line-style': 'dotted', width: 3, 'line-color': edgeColours.outOfDate },
      },
      // Drawn from a group, whose label already names the shared role or type.
      { selector: 'edge.via-group', style: { 'source-label': '', width: 1 } },
      {
        selector: 'edge.group-link',
        style: {
          width: 4,
          'line-color': groupStyle.colour,
          'line-style': 'dashed',
          'line-dash-pattern': [2, 4],
          label: 'data(note)',
        },
      },
      { selector: 'edge:selected', style: { width: 5, 'line-color': '#0f5ea8' } },
    ],
  });
  cy.on('tap', 'node', (event) => {
    const id = event.target.id();
    queue(() => activate(id, true));
  });
  cy.on('tap', 'edge', (event) => select(event.target.id()));
  cy.on('tap', (event) => {
    if (event.target === cy) select(null);
  });
}

function recordElement(record) {
  const style = styleOfType(record.objecttypecode);
  const unexpanded = !record.expanded && record.connectioncount !== undefined;
  const label = `${recordLabel(record)}\n${typeName(record.objecttypecode)}${unexpanded ? ` · ${plural(record.connectioncount, 'connection')}` : ''}`;
  return {
    group: 'nodes',
    data: {
      id: recordNodeId(record.recordid),
      label,
      colour: style.colour,
      shape: style.shape,
      ring: record.ring,
      treeParent: record.parent ?? null,
      ...(unexpanded && { badge: badge(record.connectioncount) }),
    },
    classes: record.recordid === state.root ? 'record root' : 'record',
  };
}

function groupElement(group) {
  const shown = group.shown > 0 ? ` · ${number.format(group.shown)} shown` : '';
  return {
    group: 'nodes',
    data: {
      id: group.id,
      label: `${group.label}\n${plural(group.count, 'connection')}${shown}`,
      colour: groupStyle.colour,
      shape: groupStyle.shape,
      ring: state.records.get(group.owner).ring + 1,
      treeParent: recordNodeId(group.owner),
      badge: badge(group.count),
    },
    classes: 'group',
  };
}

function edgeElement(edge) {
  const kind = edgeState(edge);
  const instant = state.filters.activeon ? new Date(state.filters.activeon).toISOString() : today();
  const note =
    kind === 'inactive'
      ? 'inactive'
      : kind === 'out-of-date'
        ? edge.effectiveend && edge.effectiveend < instant
          ? 'ended'
          : 'not started'
        : '';
  return {
    group: 'edges',
    data: {
      id: `c-${connectionKey(edge)}`,
      source: edge.drawnFrom,
      target: recordNodeId(edge.record2id),
      sourceRole: edge.record1rolename ?? '',
      targetRole: edge.record2rolename ?? '',
      note,
    },
    classes: ['connection', kind === 'current' ? '' : kind, edge.drawnFrom.startsWith('g-') ? 'via-group' : '']
      .filter(Boolean)
      .join(' '),
  };
}

/** Refreshes what cytoscape draws from the state (adds what is new, updates labels and badges). */
function draw() {
  cy.batch(() => {
    for (const record of state.records.values()) {
      const element = recordElement(record);
      const existing = cy.getElementById(element.data.id);
      if (existing.nonempty()) {
        existing.data(element.data);
        if (!element.data.badge) existing.removeData('badge');
      } else cy.add(element);
    }
    for (const group of state.groups.values()) {
      const element = groupElement(group);
      const existing = cy.getElementById(group.id);
      if (existing.nonempty()) existing.data(element.data);
      else {
        cy.add(element);
        cy.add({
          group: 'edges',
          data: { id: `l-${group.id}`, source: recordNodeId(group.owner), target: group.id, note: '' },
          classes: 'group-link',
        });
      }
    }
    for (const edge of state.connections.values()) {
      const element = edgeElement(edge);
      if (cy.getElementById(element.data.id).empty()) cy.add(element);
    }
  });
  layout();
  renderTable();
  $('graph').dataset.records = String(state.records.size);
  $('graph').dataset.connections = String(state.connections.size);
  $('graph').dataset.groups = String(state.groups.size);
}

/**
 * A radial tree: the record in the centre, each hop a ring further out, and each record inside the
 * slice of the ring that belongs to the record (or group) it was reached from, the slice as wide as the
 * records under it need. Cytoscape draws it (a preset layout); only the positions are computed here.
 */
function radialPositions() {
  const children = new Map();
  const parentOf = (node) => node.data('treeParent') ?? null;
  for (const node of cy.nodes()) {
    const parent = parentOf(node);
    if (parent === null) continue;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(node.id());
  }
  for (const list of children.values())
    list.sort((a, b) => cy.getElementById(a).data('label').localeCompare(cy.getElementById(b).data('label')));
  const weight = new Map();
  const weigh = (id) => {
    const own = (children.get(id) ?? []).reduce((sum, child) => sum + weigh(child), 0);
    weight.set(id, Math.max(1, own));
    return weight.get(id);
  };
  const rootId = recordNodeId(state.root);
  weigh(rootId);
  const depthCount = [];
  const depthOf = new Map([[rootId, 0]]);
  const walk = (id) => {
    for (const child of children.get(id) ?? []) {
      depthOf.set(child, depthOf.get(id) + 1);
      depthCount[depthOf.get(child)] = (depthCount[depthOf.get(child)] ?? 0) + 1;
      walk(child);
    }
  };
  walk(rootId);
  const radius = [0];
  for (let depth = 1; depth < depthCount.length; depth++)
    radius[depth] = Math.max(radius[depth - 1] + 210, (depthCount[depth] * 64) / (2 * Math.PI));
  const positions = new Map([[rootId, { x: 0, y: 0 }]]);
  const place = (id, from, to) => {
    let start = from;
    for (const child of children.get(id) ?? []) {
      const span = ((to - from) * weight.get(child)) / weight.get(id);
      const angle = start + span / 2;
      const r = radius[depthOf.get(child)];
      positions.set(child, { x: r * Math.cos(angle), y: r * Math.sin(angle) });
      place(child, start, start + span);
      start += span;
    }
  };
  place(rootId, -Math.PI / 2, (3 * Math.PI) / 2);
  return positions;
}

function layout() {
  const positions = radialPositions();
  cy.layout({
    name: 'preset',
    positions: (node) => positions.get(node.id()) ?? { x: 0, y: 0 },
    animate: false,
    fit: true,
    padding: 40,
  }).run();
}

// ---------------------------------------------------------------------------------------------------
// Loading: the centre record, expanding records, groups, more pages.

/** Adds a graph answer around `owner` (records and connections), the connections drawn from `from`. */
function addGraph(graph, owner, from) {
  const ownerRecord = state.records.get(owner);
  const fresh = [];
  for (const node of graph.nodes) {
    if (node.recordid === owner) continue;
    if (state.records.has(node.recordid)) continue;
    if (state.records.size >= MAX_DRAWN) {
      state.capped = true;
      continue;
    }
    const record = {
      ...node,
      depth: ownerRecord.depth + 1,
      ring: from.startsWith('g-') ? ownerRecord.ring + 2 : ownerRecord.ring + 1,
      parent: from,
      expanded: false,
    };
    state.records.set(node.recordid, record);
    fresh.push(record);
  }
  let added = 0;
  for (const edge of graph.edges) {
    const key = connectionKey(edge);
    if (state.connections.has(key)) continue;
    if (!state.records.has(edge.record1id) || !state.records.has(edge.record2id)) continue;
    const drawnFrom = edge.record1id === owner ? from : recordNodeId(edge.record1id);
    state.connections.set(key, { ...edge, drawnFrom });
    added++;
  }
  return { fresh, added };
}

function graphUrl(recordId, extra, limit = PAGE + 1) {
  const query = filterParams(recordId === state.root);
  for (const [name, value] of Object.entries(extra)) query.set(name, String(value));
  query.set('depth', '1');
  query.set('count', 'true');
  query.set('top', String(PAGE));
  query.set('limit', String(limit));
  return `/records/${recordId}/graph?${query}`;
}

/**
 * A record's first page of connections with the counts of the records on it, but only when it has no
 * more than a page: a first look at the record alone (one page read, and its count when there is more)
 * tells, so a record with 5,000 connections costs a count, not 50 counts of records never drawn.
 */
async function firstPage(recordId) {
  const head = await api(graphUrl(recordId, {}, 1));
  const self = head.nodes[0];
  if (self.hasmore || self.connectioncount === 0) return { self, graph: undefined };
  const graph = await api(graphUrl(recordId, {}));
  return { self: graph.nodes[0], graph };
}

async function loadRoot() {
  rolesCache.clear();
  typeCountCache.clear();
  state.records.clear();
  state.connections.clear();
  state.groups.clear();
  state.capped = false;
  cy.elements().remove();
  select(null);
  renderCharts(undefined);
  if (!GUID.test(state.root)) {
    setStatus(
      state.root
        ? `"${state.root}" is not a record ID (a GUID).`
        : 'Enter or paste a record ID to see its connections.',
      !!state.root,
    );
    draw();
    return;
  }
  setStatus('Loading…');
  const { self: root, graph } = await firstPage(state.root);
  state.records.set(root.recordid, { ...root, depth: 0, ring: 0, expanded: true });
  if (root.hasmore) await groupRecord(root.recordid);
  else if (graph) addGraph(graph, root.recordid, recordNodeId(root.recordid));
  draw();
  select(recordNodeId(root.recordid), false);
  describeRoot();
  await Promise.all([loadCharts(), loadRoleFilter()]);
}

function describeRoot() {
  const root = state.records.get(state.root);
  const who = `${recordLabel(root)} (${typeName(root.objecttypecode)})`;
  if (root.grouped) {
    const groups = [...state.groups.values()].filter((group) => group.owner === root.recordid);
    setStatus(
      `${who} has ${plural(root.connectioncount, 'connection')}: too many to draw one by one, so they are grouped by ${state.groupBy === 'role' ? 'role' : 'record type'} (${plural(groups.length, 'group')}). Select a group to draw its first ${PAGE}.`,
    );
  } else if (root.connectioncount === 0) {
    setStatus(`${who}: no connections you can read${hasFilters() ? ' with these filters' : ''}.`);
  } else {
    setStatus(
      `${who}: ${plural(root.connectioncount, 'connection')}${hasFilters() ? ' with these filters' : ''}. Select a record to see its connections.`,
    );
  }
}

const hasFilters = () => Object.values(state.filters).some(Boolean);

/** Expands a record: its connections, or groups of them when there are more than a page. */
async function expandRecord(recordId) {
  const record = state.records.get(recordId);
  if (record.expanded) {
    if (record.hasmore && !record.grouped && record.nextLink) await loadMore(record);
    return;
  }
  setStatus(`Loading the connections of ${recordLabel(record)}…`);
  const { self, graph } = await firstPage(recordId);
  Object.assign(record, {
    expanded: true,
    hasmore: self.hasmore,
    connectioncount: self.connectioncount,
    nextLink: self.nextLink,
  });
  if (!record.name && self.name) record.name = self.name;
  if (self.hasmore) {
    await groupRecord(recordId);
    draw();
    setStatus(
      `${recordLabel(record)} has ${plural(record.connectioncount, 'connection')}: grouped by ${state.groupBy === 'role' ? 'role' : 'record type'}.`,
    );
    return;
  }
  const { fresh, added } = graph ? addGraph(graph, recordId, recordNodeId(recordId)) : { fresh: [], added: 0 };
  draw();
  setStatus(
    `${recordLabel(record)}: ${plural(added, 'more connection')} and ${plural(fresh.length, 'more record')} drawn${state.capped ? ` (at most ${MAX_DRAWN} records are drawn: use the filters or the table)` : ''}.`,
  );
}

/** Counts a record's connections with extra filters, with the API's count=true (one row read plus the count). */
async function countWith(recordId, extra) {
  const query = filterParams(recordId === state.root);
  for (const [name, value] of Object.entries(extra)) query.set(name, value);
  query.set('top', '1');
  query.set('count', 'true');
  return (await api(`/records/${recordId}/connections?${query}`)).count;
}

const typeCountCache = new Map();
const rolesCache = new Map();

/** The roles a record plays (GET /records/{id}/roles), asked once per load of the page's centre record. */
function rolesOf(recordId) {
  if (!rolesCache.has(recordId))
    rolesCache.set(
      recordId,
      api(`/records/${recordId}/roles`).then((answer) => answer.value),
    );
  return rolesCache.get(recordId);
}

/** The record's connections per other record type, from count=true: the types given, or every type. */
async function countsByType(recordId, codes) {
  const key = `${recordId}?${filterParams(recordId === state.root)}&${codes?.join(',') ?? '*'}`;
  if (!typeCountCache.has(key)) {
    const wanted = codes ?? [...state.types.keys()];
    const fixed =
      recordId === state.root && state.filters.othertypecode
        ? wanted.filter(
            (code) =>
              String(code) === state.filters.othertypecode || state.types.get(code) === state.filters.othertypecode,
          )
        : wanted;
    typeCountCache.set(
      key,
      mapLimited(fixed, CONCURRENCY, async (code) => ({
        code,
        count: await countWith(recordId, { othertypecode: String(code) }),
      })),
    );
  }
  return (await typeCountCache.get(key)).filter((entry) => entry.count > 0).sort((a, b) => b.count - a.count);
}

/** Groups a record with more connections than a page: by role (from /roles) or by the other record's type. */
async function groupRecord(recordId) {
  const record = state.records.get(recordId);
  record.grouped = true;
  const first = recordId === state.root;
  if (state.groupBy === 'role') {
    const roles = await rolesOf(recordId);
    const onlyRole = first ? state.filters.roleid : '';
    const wanted = roles.filter((role) => !onlyRole || role.connectionroleid === onlyRole);
    const plain = first
      ? !state.filters.statecode && !state.filters.activeon && !state.filters.othertypecode
      : !state.filters.statecode && !state.filters.activeon;
    const counts = plain
      ? wanted.map((role) => role.count)
      : await mapLimited(wanted, CONCURRENCY, (role) => countWith(recordId, { roleid: role.connectionroleid }));
    wanted.forEach((role, index) => {
      if (counts[index] > 0)
        addGroup(
          recordId,
          'role',
          role.connectionroleid,
          role.name ?? `Role ${shortId(role.connectionroleid)}`,
          counts[index],
          true,
        );
    });
    const rest = record.connectioncount - counts.reduce((sum, count) => sum + count, 0);
    if (rest > 0 && !onlyRole) addGroup(recordId, 'role', 'none', 'No role', rest, false);
  } else {
    for (const { code, count } of await countsByType(recordId))
      addGroup(recordId, 'type', String(code), typeName(code), count, true);
  }
}

function addGroup(owner, kind, value, label, count, expandable) {
  const id = `g-${owner}-${kind}-${value}`;
  state.groups.set(id, {
    id,
    owner,
    kind,
    value,
    label,
    count,
    shown: 0,
    loaded: false,
    nextLink: undefined,
    expandable,
  });
}

/** Draws a group's first page of connections, or its next page. */
async function expandGroup(groupId) {
  const group = state.groups.get(groupId);
  if (!group.expandable) {
    setStatus(
      `Connections without a role cannot be picked out by a filter: group by record type to browse them, or use the API.`,
    );
    return;
  }
  if (group.loaded) {
    if (group.nextLink) await loadMore(group);
    else setStatus(`All ${plural(group.count, 'connection')} of ${group.label} are drawn.`);
    return;
  }
  setStatus(`Loading ${group.label}…`);
  const filter = group.kind === 'role' ? { roleid: group.value } : { othertypecode: group.value };
  const graph = await api(graphUrl(group.owner, filter));
  const { added } = addGraph(graph, group.owner, groupId);
  Object.assign(group, { loaded: true, shown: group.shown + added, nextLink: graph.nodes[0].nextLink });
  draw();
  setStatus(
    `${group.label}: ${number.format(group.shown)} of ${plural(group.count, 'connection')} drawn${group.nextLink ? `; select the group again for ${PAGE} more` : ''}.`,
  );
}

async function roleNames() {
  state.roleNames ??= api('/connectionroles?top=1000').then(
    (page) => new Map(page.value.map((role) => [role.connectionroleid, role.name])),
  );
  return state.roleNames;
}

/** The next page of a record's (or a group's) connections, from the nextLink the API gave. */
async function loadMore(target) {
  if (state.records.size >= MAX_DRAWN) {
    setStatus(`At most ${MAX_DRAWN} records are drawn: use the filters, or the API, to see the rest.`);
    return;
  }
  const owner = target.owner ?? target.recordid;
  const ownerRecord = state.records.get(owner);
  const url = new URL(target.nextLink, location.href);
  url.searchParams.set('top', String(PAGE));
  const [page, names] = await Promise.all([api(url.toString()), roleNames()]);
  const nodes = page.value.map((half) => ({
    recordid: half.record2id,
    objecttypecode: half.record2objecttypecode,
    objecttypename: half.record2objecttypename,
    name: half.record2name,
    depth: ownerRecord.depth + 1,
    expanded: false,
    hasmore: false,
  }));
  const edges = page.value.map((half) => ({
    ...half,
    record1rolename: names.get(half.record1roleid) ?? null,
    record2rolename: names.get(half.record2roleid) ?? null,
    depth: ownerRecord.depth + 1,
  }));
  const { fresh, added } = addGraph({ nodes, edges }, owner, target.id ?? recordNodeId(owner));
  // Counts for the badges of the records just added, with the filters of their next hop.
  await mapLimited(fresh, CONCURRENCY, async (record) => {
    record.connectioncount = await countWith(record.recordid, {});
  });
  target.nextLink = page.nextLink;
  if (target.id) target.shown += added;
  draw();
  setStatus(`${plural(added, 'more connection')} drawn${target.nextLink ? '; there are more' : ''}.`);
}

// ---------------------------------------------------------------------------------------------------
// Selection, details and keyboard navigation.

let selected = null;

function select(elementId, announce = true) {
  if (!cy) return;
  cy.elements(':selected').unselect();
  selected = elementId;
  if (!elementId) {
    renderDetails(null);
    return;
  }
  const element = cy.getElementById(elementId);
  if (element.empty()) return;
  element.select();
  renderDetails(elementId);
  if (announce) $('announce').textContent = describe(elementId);
}

function describe(elementId) {
  if (elementId.startsWith('r-')) {
    const record = state.records.get(elementId.slice(2));
    const count = record.connectioncount === undefined ? '' : `, ${plural(record.connectioncount, 'connection')}`;
    return `${recordLabel(record)}, ${typeName(record.objecttypecode)}${count}, ${record.expanded ? 'expanded' : 'not expanded: press Enter to expand'}.`;
  }
  if (elementId.startsWith('g-')) {
    const group = state.groups.get(elementId);
    return `Group ${group.label}, ${plural(group.count, 'connection')}, ${number.format(group.shown)} shown.`;
  }
  const edge = state.connections.get(elementId.slice(2));
  return edge
    ? `Connection from ${edge.record1name ?? shortId(edge.record1id)} to ${edge.record2name ?? shortId(edge.record2id)}.`
    : '';
}

/** Selecting a record or group also expands it (a click or Enter): one action, one more hop. */
async function activate(elementId, expand) {
  select(elementId);
  if (!expand) return;
  if (elementId.startsWith('r-')) await expandRecord(elementId.slice(2));
  else if (elementId.startsWith('g-')) await expandGroup(elementId);
  select(elementId, false);
}

function navigationOrder() {
  return cy
    .nodes()
    .sort((a, b) => a.data('ring') - b.data('ring') || a.data('label').localeCompare(b.data('label')))
    .map((node) => node.id());
}

function onGraphKey(event) {
  const order = navigationOrder();
  if (order.length === 0) return;
  const index = selected ? order.indexOf(selected) : -1;
  let next;
  switch (event.key) {
    case 'ArrowRight':
    case 'ArrowDown':
      next = order[(index + 1) % order.length];
      break;
    case 'ArrowLeft':
    case 'ArrowUp':
      next = order[(index - 1 + order.length) % order.length];
      break;
    case 'Home':
      next = order[0];
      break;
    case 'End':
      next = order[order.length - 1];
      break;
    case 'Enter':
    case ' ':
      if (selected && !selected.startsWith('c-')) queue(() => activate(selected, true));
      event.preventDefault();
      return;
    case 'Escape':
      select(null);
      event.preventDefault();
      return;
    default:
      return;
  }
  event.preventDefault();
  select(next);
}

const fieldRows = (pairs) =>
  h(
    'dl',
    {},
    pairs
      .filter(([, value]) => value !== undefined)
      .flatMap(([name, value]) => [h('dt', {}, name), h('dd', {}, value ?? '—')]),
  );

function renderDetails(elementId) {
  const body = $('details-body');
  body.replaceChildren();
  if (!elementId) {
    body.append(h('p', {}, 'Select a record, a group or a connection (click, or use the arrow keys in the graph).'));
    return;
  }
  if (elementId.startsWith('r-')) renderRecordDetails(body, state.records.get(elementId.slice(2)));
  else if (elementId.startsWith('g-')) renderGroupDetails(body, state.groups.get(elementId));
  else renderConnectionDetails(body, state.connections.get(elementId.slice(2)));
}

function renderRecordDetails(body, record) {
  body.append(
    h('h3', {}, recordLabel(record)),
    fieldRows([
      [
        'Type',
        `${typeName(record.objecttypecode)}${record.objecttypecode === null ? '' : ` (${record.objecttypecode})`}`,
      ],
      ['Record ID', record.recordid],
      ['Hops from the centre', String(record.depth)],
      ['Connections', record.connectioncount === undefined ? 'not counted' : number.format(record.connectioncount)],
      ['Expanded', record.expanded ? (record.grouped ? 'yes, grouped' : 'yes') : 'no'],
    ]),
  );
  const actions = h('div', { class: 'actions' });
  if (!record.expanded)
    actions.append(
      h(
        'button',
        { type: 'button', onclick: () => queue(() => activate(recordNodeId(record.recordid), true)) },
        'Expand',
      ),
    );
  else if (record.hasmore && !record.grouped && record.nextLink)
    actions.append(
      h(
        'button',
        { type: 'button', onclick: () => queue(() => activate(recordNodeId(record.recordid), true)) },
        `Load ${PAGE} more`,
      ),
    );
  if (record.recordid !== state.root)
    actions.append(h('button', { type: 'button', onclick: () => navigate(record.recordid) }, 'Centre on this record'));
  body.append(actions);
  const drawn = [...state.connections.values()].filter(
    (edge) => edge.record1id === record.recordid || edge.record2id === record.recordid,
  );
  if (drawn.length > 0) {
    body.append(
      h('h3', {}, `Connections drawn (${drawn.length})`),
      h(
        'ul',
        {},
        drawn.map((edge) => {
          const other =
            edge.record1id === record.recordid
              ? { id: edge.record2id, name: edge.record2name }
              : { id: edge.record1id, name: edge.record1name };
          return h(
            'li',
            {},
            h(
              'button',
              { type: 'button', class: 'link', onclick: () => select(`c-${connectionKey(edge)}`) },
              `${other.name ?? shortId(other.id)}${edge.statecode === 1 ? ' (inactive)' : ''}`,
            ),
          );
        }),
      ),
    );
  }
}

function renderGroupDetails(body, group) {
  const owner = state.records.get(group.owner);
  body.append(
    h('h3', {}, `${group.label} (group)`),
    fieldRows([
      ['Connections of', recordLabel(owner)],
      ['Grouped by', group.kind === 'role' ? 'role' : 'record type'],
      ['Connections', number.format(group.count)],
      ['Drawn', number.format(group.shown)],
    ]),
  );
  const actions = h('div', { class: 'actions' });
  if (group.expandable && (!group.loaded || group.nextLink)) {
    actions.append(
      h(
        'button',
        { type: 'button', onclick: () => queue(() => activate(group.id, true)) },
        group.loaded ? `Load ${PAGE} more` : `Draw the first ${PAGE}`,
      ),
    );
  }
  if (!group.expandable)
    body.append(
      h('p', {}, 'Connections without a role cannot be picked out by a filter: group by record type to browse them.'),
    );
  body.append(actions);
}

const states = { 0: 'Active', 1: 'Inactive' };

function renderConnectionDetails(body, edge) {
  if (!edge) return;
  body.append(
    h('h3', {}, `${edge.record1name ?? shortId(edge.record1id)} → ${edge.record2name ?? shortId(edge.record2id)}`),
    fieldRows([
      ['From', `${edge.record1name ?? '—'} (${edge.record1objecttypename ?? edge.record1objecttypecode})`],
      ['From role', edge.record1rolename ?? (edge.record1roleid ? shortId(edge.record1roleid) : 'none')],
      ['To', `${edge.record2name ?? '—'} (${edge.record2objecttypename ?? edge.record2objecttypecode})`],
      ['To role', edge.record2rolename ?? (edge.record2roleid ? shortId(edge.record2roleid) : 'none')],
      ['Description', edge.description],
      ['Starting', dateOnly(edge.effectivestart) || 'open'],
      ['Ending', dateOnly(edge.effectiveend) || 'open'],
      [
        'Status',
        `${states[edge.statecode] ?? edge.statecode}${edgeState(edge) === 'out-of-date' ? ' (not in effect on the date)' : ''}`,
      ],
      ['Owner', edge.ownerid],
      ['Created', `${edge.createdon.slice(0, 16).replace('T', ' ')} by ${shortId(edge.createdby)}`],
      ['Modified', `${edge.modifiedon.slice(0, 16).replace('T', ' ')} by ${shortId(edge.modifiedby)}`],
      ['Version', String(edge.versionnumber)],
      ['Connection ID', edge.connectionid],
      ['From record ID', edge.record1id],
      ['To record ID', edge.record2id],
    ]),
  );
  const shares = h('div', { id: 'details-shares' }, h('p', {}, 'Loading its shares…'));
  body.append(h('h3', {}, 'Shared with'), shares);
  api(`/records/${edge.record1id}/connections/${edge.connectionid}/access`).then(
    (answer) => {
      shares.replaceChildren(
        answer.value.length === 0
          ? h('p', {}, 'Nobody: only its owner and administrators can see it.')
          : h(
              'ul',
              {},
              answer.value.map((share) =>
                h(
                  'li',
                  { dataset: { principal: share.principalid } },
                  `${share.principaltype} ${share.principalid}: ${share.accessrights}`,
                ),
              ),
            ),
      );
    },
    (error) =>
      shares.replaceChildren(
        h('p', {}, error.status === 404 || error.status === 403 ? 'You may not read its shares.' : error.message),
      ),
  );
  const history = h('div', { id: 'details-history' }, h('p', {}, 'Loading its history…'));
  body.append(h('h3', {}, 'History'), history);
  api(`/records/${edge.record1id}/connections/${edge.connectionid}/audit?top=20`).then(
    (answer) =>
      history.replaceChildren(
        h(
          'ol',
          { class: 'history' },
          answer.value.map((record) =>
            h(
              'li',
              { dataset: { version: String(record.versionnumber) } },
              h('strong', {}, record.operation),
              ` v${record.versionnumber}, ${record.createdon.slice(0, 16).replace('T', ' ')} by ${shortId(record.userid)}`,
              record.changes.length === 0
                ? null
                : h(
                    'ul',
                    {},
                    record.changes.map((change) =>
                      h('li', {}, `${change.attribute}: ${change.oldvalue ?? '—'} → ${change.newvalue ?? '—'}`),
                    ),
                  ),
            ),
          ),
        ),
      ),
    (error) =>
      history.replaceChildren(
        h('p', {}, error.status === 404 || error.status === 403 ? 'You may not read its history.' : error.message),
      ),
  );
  const other = edge.record2id;
  body.append(
    h(
      'div',
      { class: 'actions' },
      state.records.get(other) && !state.records.get(other).expanded
        ? h(
            'button',
            { type: 'button', onclick: () => queue(() => activate(recordNodeId(other), true)) },
            `Expand ${edge.record2name ?? 'the other record'}`,
          )
        : null,
      other !== state.root
        ? h(
            'button',
            { type: 'button', onclick: () => navigate(other) },
            `Centre on ${edge.record2name ?? 'the other record'}`,
          )
        : null,
    ),
  );
}

// ---------------------------------------------------------------------------------------------------
// Table view, charts, filters.

function recordCell(id, name, typeCode) {
  return h('td', {}, name ?? shortId(id), h('br'), h('span', { class: 'type' }, typeName(typeCode)));
}

function renderTable() {
  const rows = [...state.connections.values()].sort(
    (a, b) => a.depth - b.depth || (a.record2name ?? '').localeCompare(b.record2name ?? ''),
  );
  $('table-caption').textContent =
    `${plural(state.records.size, 'record')}, ${plural(rows.length, 'connection')} drawn${state.groups.size ? `, ${plural(state.groups.size, 'group')}` : ''}`;
  $('connections-table').tBodies[0].replaceChildren(
    ...rows.map((edge) => {
      const kind = edgeState(edge);
      const other = state.records.get(edge.record2id);
      return h(
        'tr',
        { class: kind, dataset: { connection: connectionKey(edge) } },
        recordCell(edge.record1id, edge.record1name, edge.record1objecttypecode),
        h('td', {}, edge.record1rolename ?? '—'),
        recordCell(edge.record2id, edge.record2name, edge.record2objecttypecode),
        h('td', {}, edge.record2rolename ?? '—'),
        h('td', {}, kind === 'current' ? 'Active' : kind === 'inactive' ? 'Inactive' : 'Active, not in effect'),
        h('td', {}, dateOnly(edge.effectivestart) || 'open'),
        h('td', {}, dateOnly(edge.effectiveend) || 'open'),
        h('td', {}, String(edge.depth)),
        h(
          'td',
          {},
          h('button', { type: 'button', onclick: () => select(`c-${connectionKey(edge)}`) }, 'Details'),
          other && !other.expanded
            ? [
                ' ',
                h(
                  'button',
                  { type: 'button', onclick: () => queue(() => activate(recordNodeId(edge.record2id), true)) },
                  `Expand (${number.format(other.connectioncount ?? 0)})`,
                ),
              ]
            : null,
        ),
      );
    }),
  );
  const groups = [...state.groups.values()];
  $('groups-table').hidden = groups.length === 0;
  $('groups-table').tBodies[0].replaceChildren(
    ...groups.map((group) =>
      h(
        'tr',
        { dataset: { group: group.id } },
        h('td', {}, recordLabel(state.records.get(group.owner))),
        h('td', {}, `${group.kind === 'role' ? 'Role' : 'Type'}: ${group.label}`),
        h('td', {}, number.format(group.count)),
        h('td', {}, number.format(group.shown)),
        h(
          'td',
          {},
          group.expandable && (!group.loaded || group.nextLink)
            ? h(
                'button',
                { type: 'button', onclick: () => queue(() => activate(group.id, true)) },
                group.loaded ? `Load ${PAGE} more` : `Draw the first ${PAGE}`,
              )
            : '',
        ),
      ),
    ),
  );
}

function bars(list, entries, options) {
  const max = Math.max(1, ...entries.map((entry) => entry.count));
  list.replaceChildren(
    ...(entries.length === 0
      ? [h('li', {}, h('span', { class: 'empty' }, options.empty))]
      : entries.map((entry) => {
          const fill = h('span', { class: 'bar-fill' });
          fill.style.width = `${(100 * entry.count) / max}%`;
          if (entry.colour) fill.style.background = entry.colour;
          const label = options.onPick
            ? h(
                'button',
                {
                  type: 'button',
                  class: 'bar-label',
                  title: `Filter by ${entry.label}`,
                  onclick: () => options.onPick(entry),
                },
                entry.label,
              )
            : h('span', { class: 'bar-label' }, entry.label);
          return h(
            'li',
            { dataset: { key: entry.key, count: String(entry.count) }, 'aria-label': `${entry.label}: ${entry.count}` },
            label,
            h('span', { class: 'bar-track', 'aria-hidden': 'true' }, fill),
            h('span', { class: 'bar-value' }, number.format(entry.count)),
          );
        })),
  );
}

function renderCharts(charts) {
  if (!charts) {
    $('chart-roles').replaceChildren();
    $('chart-types').replaceChildren();
    return;
  }
  bars($('chart-roles'), charts.roles, {
    empty: 'It plays no role in the connections you can read.',
    onPick: (entry) => setFilter('roleid', entry.key),
  });
  bars($('chart-types'), charts.types, {
    empty: 'No connections with these filters.',
    onPick: (entry) => setFilter('othertypecode', entry.key),
  });
}

/** The charts: roles the record plays (/records/{id}/roles) and its connections by other type (count=true). */
async function loadCharts() {
  const root = state.records.get(state.root);
  const roles = rolesOf(state.root);
  // With all of its connections loaded, their types are all the types there are; otherwise ask for every type.
  const seen = root.grouped
    ? undefined
    : [
        ...new Set(
          [...state.connections.values()]
            .filter((edge) => edge.record1id === state.root)
            .map((edge) => edge.record2objecttypecode),
        ),
      ];
  const types = seen && seen.length === 0 ? [] : await countsByType(state.root, seen);
  renderCharts({
    roles: (await roles)
      .map((role) => ({
        key: role.connectionroleid,
        label: role.name ?? shortId(role.connectionroleid),
        count: role.count,
      }))
      .sort((a, b) => b.count - a.count),
    types: types.map(({ code, count }) => ({
      key: typeName(code),
      label: typeName(code),
      count,
      colour: styleOfType(code).colour,
    })),
  });
}

async function loadRoleFilter() {
  const select = $('filter-role');
  const roles = await rolesOf(state.root);
  const wanted = state.filters.roleid;
  select.replaceChildren(
    h('option', { value: '' }, 'Any role'),
    ...roles.map((role) =>
      h('option', { value: role.connectionroleid }, `${role.name ?? shortId(role.connectionroleid)} (${role.count})`),
    ),
  );
  if (wanted && !roles.some((role) => role.connectionroleid === wanted))
    select.append(h('option', { value: wanted }, `Role ${shortId(wanted)}`));
  select.value = wanted;
}

function renderLegend() {
  const known = Object.keys(typeStyles).map(Number);
  $('legend-types').replaceChildren(
    ...known.map((code) => {
      const swatch = h('span', { class: 'swatch', 'aria-hidden': 'true' });
      swatch.style.background = styleOfType(code).colour;
      return h('li', {}, swatch, `${typeName(code)} (${styleOfType(code).shape.replace('round-', '')})`);
    }),
    h('li', {}, h('span', { class: 'swatch', 'aria-hidden': 'true' }), 'other types'),
  );
  const other = $('legend-types').lastElementChild.firstElementChild;
  other.style.background = styleOfType(10000).colour;
}

function setFilter(name, value) {
  state.filters[name] = value;
  syncControls();
  navigate(state.root);
}

function syncControls() {
  $('record-input').value = state.root;
  $('filter-role').value = state.filters.roleid;
  $('filter-type').value = state.filters.othertypecode;
  $('filter-state').value = state.filters.statecode;
  $('filter-activeon').value = state.filters.activeon;
  $('group-by').value = state.groupBy;
}

/** Shows a record's graph with the current filters, and puts both in the address (links can be shared). */
function navigate(recordId) {
  state.root = recordId.toLowerCase();
  const query = new URLSearchParams({ record: state.root });
  for (const [name, value] of Object.entries(state.filters)) if (value) query.set(name, value);
  if (state.groupBy !== 'role') query.set('groupby', state.groupBy);
  history.replaceState(null, '', `${location.pathname}?${query}`);
  syncControls();
  queue(loadRoot);
}

function setStatus(text, error = false) {
  $('status').textContent = text;
  $('status').classList.toggle('error', error);
}

// ---------------------------------------------------------------------------------------------------
// One operation at a time; the page says when it is idle (the browser tests wait for that).

let pending = Promise.resolve();
let running = 0;

function queue(task) {
  running++;
  document.body.dataset.state = 'loading';
  pending = pending
    .then(task)
    .catch((error) => {
      setStatus(
        error.status === 401
          ? mode === 'local'
            ? 'The caller is not valid: pick one above.'
            : 'Sign in to see connections.'
          : `Could not load: ${error.message}`,
        true,
      );
      console.warn(error);
    })
    .finally(() => {
      running--;
      if (running === 0) document.body.dataset.state = 'ready';
    });
  return pending;
}

// ---------------------------------------------------------------------------------------------------
// Start.

function setUpLocalCaller() {
  if (mode !== 'local') return;
  $('local-caller').hidden = false;
  const preset = $('caller-preset');
  preset.replaceChildren(...presets.map((entry) => h('option', { value: entry.key }, entry.label)));
  const show = () => {
    preset.value = caller.preset ?? 'custom';
    $('caller-id').value = caller.id;
    $('caller-teams').value = caller.teams;
    $('caller-admin').checked = caller.admin;
  };
  show();
  const apply = () => {
    caller = {
      preset: preset.value,
      id: $('caller-id').value.trim(),
      teams: $('caller-teams').value,
      admin: $('caller-admin').checked,
    };
    localStorage.setItem('explorer.caller', JSON.stringify(caller));
    typeCountCache.clear();
    navigate(state.root);
  };
  preset.addEventListener('change', () => {
    const chosen = presets.find((entry) => entry.key === preset.value);
    if (chosen.key !== 'custom') {
      caller = { preset: chosen.key, id: chosen.id, teams: chosen.teams, admin: chosen.admin };
      show();
      apply();
    } else $('caller-id').focus();
  });
  $('caller-apply').addEventListener('click', apply);
}

async function start() {
  setUpLocalCaller();
  createGraph();
  $('graph').addEventListener('keydown', onGraphKey);
  $('record-form').addEventListener('submit', (event) => {
    event.preventDefault();
    navigate($('record-input').value.trim());
  });
  for (const [id, name] of [
    ['filter-role', 'roleid'],
    ['filter-type', 'othertypecode'],
    ['filter-state', 'statecode'],
    ['filter-activeon', 'activeon'],
  ]) {
    $(id).addEventListener('change', () => setFilter(name, $(id).value));
  }
  $('group-by').addEventListener('change', () => {
    state.groupBy = $('group-by').value;
    navigate(state.root);
  });
  $('clear-filters').addEventListener('click', () => {
    state.filters = { roleid: '', othertypecode: '', statecode: '', activeon: '' };
    navigate(state.root);
  });
  const showTable = (table) => {
    $('table-view').hidden = !table;
    $('graph').hidden = table;
    $('show-table').setAttribute('aria-pressed', String(table));
    $('show-graph').setAttribute('aria-pressed', String(!table));
    if (!table) {
      cy.resize();
      cy.fit(undefined, 30);
    }
  };
  $('show-table').addEventListener('click', () => showTable(true));
  $('show-graph').addEventListener('click', () => showTable(false));

  await queue(async () => {
    const types = (await api('/objecttypes')).value;
    for (const type of types) state.types.set(type.objecttypecode, type.objecttypename);
    $('filter-type').append(...types.map((type) => h('option', { value: type.objecttypename }, type.objecttypename)));
    renderLegend();
  });
  navigate(state.root);
}

// A hook for the browser tests and for people poking at the page from the console.
window.explorer = {
  get cy() {
    return cy;
  },
  state,
  idle: () => pending,
  counts: () => ({
    records: state.records.size,
    connections: state.connections.size,
    groups: state.groups.size,
    drawnNodes: cy.nodes().length,
    drawnEdges: cy.edges('.connection').length,
  }),
};

if (typeof cytoscape === 'undefined') {
  setStatus('The graph library (cytoscape) did not load.', true);
  document.body.dataset.state = 'error';
} else {
  start();
}

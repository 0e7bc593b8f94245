// Dev, load: the checks of what clients see over HTTP, each naming the numbered invariant it guards; used by the crash and model tests and the soak.
import { invariantLabel, type InvariantNumber } from '../../shared/protocol/invariants';
import type { Violation as CheckerViolation } from '../../shared/protocol/repair/findings';
import { type ConsistencyWalker, repairSlice } from '../../shared/protocol/repair/walker';
import {
  type ConnectionRef,
  type Headers,
  type History,
  type Observation,
  type Op,
  type Read,
  type Side,
  clock,
  ended,
  finalStatus,
  halfPath,
  is2xx,
  isRetryable,
  lastAttempt,
  otherRecordOf,
  read,
  readList,
  recordOf,
  started,
} from './traffic';

/**
 * The invariants of the connection pair as clients can see them over HTTP, each defined once and used by
 * the crash test (test/http/crash.http.test.ts), the concurrent model test (test/http/model.http.test.ts)
 * and the soak (dev/load/soak.ts). None of them predicts exact answers: they accept any linearisable
 * outcome of a concurrent history in which requests may fail, be retried (the same request) or be
 * abandoned, and they read the state only through the API, so they hold for any storage protocol.
 *
 * Time: every request and read has a start and an end on one clock (dev/load/traffic.ts). A request that
 * answered took effect, if at all, between its start and its answer; one that got no answer (the app was
 * killed, the connection dropped) may still take effect up to IN_FLIGHT_MS after, while storage finishes
 * the requests the dead process had already sent. "May act in [from, to]" below means exactly that.
 */
export const IN_FLIGHT_MS = 1000;

export type CheckName =
  | 'revoked-reader-reads-nothing'
  | 'conflict-names-live-connection'
  | 'created-readable-from-both'
  | 'deleted-stays-deleted'
  | 'visible-when-answered'
  | 'one-state-per-version'
  | 'applied-not-refused'
  | 'no-internal-error'
  | 'one-active-per-pair'
  | 'halves-mirror'
  | 'checker-clean';

export interface Check {
  /** The numbered invariant it guards (shared/protocol/invariants.ts; stated in docs/protocol.md). */
  invariant: InvariantNumber;
  /** What the check holds the HTTP answers and reads to. */
  statement: string;
}

/**
 * Every check, with the invariant it guards. Where a check holds the API to something the invariants
 * do not state in so many words, the comment says which invariant it serves and why.
 */
export const CHECKS: Record<CheckName, Check> = {
  'revoked-reader-reads-nothing': {
    invariant: 5,
    statement:
      "a principal whose revoke answered 2xx (and was not granted again later) cannot read the connection through either record's URL, nor see it in either record's list or a role query",
  },
  // Serves I1: a 409 ConnectionExists is how I1 refuses a second active connection for a pair, and it
  // must name the connection that holds the pair, made visible from both records first.
  'conflict-names-live-connection': {
    invariant: 1,
    statement:
      'a 409 ConnectionExists names a connection that an administrator reads through the requesting record, active with those records and roles (unless it was changed or deleted later)',
  },
  // Serves I3: a create answered 2xx is not lost. That its halves agree is I7's part (halves-mirror after
  // repair); before repair, a half may lag only after an operation that did not answer, as I2 allows.
  'created-readable-from-both': {
    invariant: 3,
    statement:
      'a create answered 200/201 and never deleted is readable through both records, in both lists, with the same fields on both halves (a half may lag only after an operation that did not answer)',
  },
  'deleted-stays-deleted': {
    invariant: 4,
    statement:
      'a delete answered 204 (and a cascade answered 200) leaves the connection gone from both records, both lists and the role index, for good',
  },
  'visible-when-answered': {
    invariant: 2,
    statement: 'a 2xx answer is visible through both halves when it returns (version, shares, deletion)',
  },
  // Serves I3: a version names one state; two states read at one version mean a change was written
  // under a version already answered, or lost beneath it.
  'one-state-per-version': {
    invariant: 3,
    statement:
      'every read of a connection at one version shows the same fields (no mix of two changes, no lost update under one version)',
  },
  // Serves I6: an answer says truly whether the request was applied. I6 states it for a retry answered
  // as the applied request was; this is the other side, a single attempt refused (412) applied nothing.
  'applied-not-refused': {
    invariant: 6,
    statement: 'a PATCH with If-Match answered 412 in a single attempt did not change anything',
  },
  'no-internal-error': {
    invariant: 8,
    statement: 'the API never answers 500: failures are 503 problems a client may retry',
  },
  'one-active-per-pair': {
    invariant: 1,
    statement: 'no two active connections join the same two records with the same roles',
  },
  'halves-mirror': {
    invariant: 7,
    statement: 'after repair, every connection has both halves and they mirror each other, or neither',
  },
  // Serves I7: the checker reads the raw rows for I7's copies, guards and index entries (and I1's and I9's
  // rows); whatever it still finds after the repair job is a copy that did not converge.
  'checker-clean': { invariant: 7, statement: 'after the repair job, the checker finds no violation' },
};

/** "I5 revoked-reads-nothing / revoked-reader-reads-nothing": a check named with the invariant it guards. */
export const checkTitle = (name: CheckName): string => `${invariantLabel(CHECKS[name].invariant)} / ${name}`;

export interface Violation {
  check: CheckName;
  detail: string;
}

/** The fields of a connection as the API returns them (the few the invariants need by name). */
export interface View extends Record<string, unknown> {
  connectionid: string;
  relatedconnectionid: string;
  record1id: string;
  record2id: string;
  record1roleid: string | null;
  record2roleid: string | null;
  statecode: number;
  versionnumber: number;
  createdon: string;
  description: string | null;
}

export function asView(value: unknown): View | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const candidate = value as Partial<View>;
  return typeof candidate.connectionid === 'string' &&
    typeof candidate.record1id === 'string' &&
    typeof candidate.versionnumber === 'number'
    ? (value as View)
    : undefined;
}

const viewsOf = (items: unknown[] | undefined): View[] => (items ?? []).flatMap((item) => asView(item) ?? []);

const SWAPPED: [string, string][] = [
  ['connectionid', 'relatedconnectionid'],
  ['record1id', 'record2id'],
  ['record1objecttypecode', 'record2objecttypecode'],
  ['record1objecttypename', 'record2objecttypename'],
  ['record1roleid', 'record2roleid'],
  ['record1name', 'record2name'],
];

/**
 * A half as seen from the given record: the half in the other record has its records, types, roles and
 * ids swapped back and `ismaster` flipped, so both halves of a consistent pair give the same object.
 * `name` (record 2's name, by definition different on the two halves) is left out.
 */
export function oriented(view: View, record1: string): Record<string, unknown> {
  const { name: _name, ...fields } = view;
  if (view.record1id === record1) return fields;
  const turned: Record<string, unknown> = { ...fields, ismaster: !fields.ismaster };
  for (const [left, right] of SWAPPED) {
    turned[left] = fields[right];
    turned[right] = fields[left];
  }
  return turned;
}

/** Field names in which two halves (or two reads) of one connection differ, once oriented alike. */
export function differences(a: View, b: View, record1: string): string[] {
  const [left, right] = [oriented(a, record1), oriented(b, record1)];
  return [...new Set([...Object.keys(left), ...Object.keys(right)])]
    .filter((field) => JSON.stringify(left[field]) !== JSON.stringify(right[field]))
    .sort();
}

// ---------------------------------------------------------------------------------------------------
// Time windows

/** Whether the operation may have changed anything: answered 2xx, or some attempt failed without a clear refusal. */
export function mayHaveActed(op: Op): boolean {
  return is2xx(finalStatus(op.exchange)) || op.exchange.attempts.some((attempt) => isRetryable(attempt.status));
}

/** The latest time the operation may have taken effect. */
export function latestEffect(op: Op): number {
  let latest = ended(op);
  for (const attempt of op.exchange.attempts)
    if (attempt.status === undefined) latest = Math.max(latest, attempt.end + IN_FLIGHT_MS);
  return latest;
}

/** Whether the operation may have taken effect between `from` and `to`. */
export const mayActWithin = (op: Op, from: number, to: number): boolean =>
  mayHaveActed(op) && started(op) <= to && latestEffect(op) >= from;

const deleting = (op: Op): boolean => op.kind === 'delete' || op.kind === 'cascade';

function describe(op: Op): string {
  const attempts = op.exchange.attempts.map(
    (attempt) => attempt.status ?? (attempt.error ? `no answer (${attempt.error})` : 'no answer'),
  );
  const ref = op.ref
    ? ` ${op.ref.id} (${op.ref.record1} -> ${op.ref.record2})`
    : op.record
      ? ` record ${op.record}`
      : '';
  const via = op.side ? ` via ${op.side}` : '';
  return `#${op.seq} ${op.kind}${ref}${via} by ${op.client} at ${started(op).toFixed(0)}-${ended(op).toFixed(0)} ms, attempts: ${attempts.join(', ')}`;
}

const problemCode = (body: unknown): string | undefined =>
  typeof body === 'object' && body !== null && typeof (body as { code?: unknown }).code === 'string'
    ? (body as { code: string }).code
    : undefined;

const holds = (items: unknown[] | undefined, ref: ConnectionRef): boolean =>
  viewsOf(items).some((view) => [ref.id, ref.relatedId].includes(view.connectionid));

// ---------------------------------------------------------------------------------------------------
// Reading the state

/** How the invariants read the API: an administrator, any principal, and the roles in use. */
export interface Observer {
  baseUrl: string;
  admin: Headers;
  headersOf: (principal: string) => Headers;
  roles: string[];
}

const listPath = (record: string, other?: string) =>
  `/records/${record}/connections?top=1000${other ? `&otherrecordid=${other}` : ''}`;
const rolePath = (role: string) => `/connections?roleid=${role}&top=1000`;

async function bothHalves(
  observer: Observer,
  ref: ConnectionRef,
  headers: Headers,
  suffix = '',
): Promise<[Read, Read]> {
  return Promise.all([
    read(observer.baseUrl, `${halfPath(ref, 'record1')}${suffix}`, headers),
    read(observer.baseUrl, `${halfPath(ref, 'record2')}${suffix}`, headers),
  ]);
}

/**
 * What a client reads right after an operation answered: enough to tell whether the answer is visible
 * through both halves (and, for a revoke, what the revoked principal still sees). After a 409
 * ConnectionExists: the requesting record's connections with the other record.
 */
export async function observeAfter(op: Op, observer: Observer, history: History): Promise<void> {
  const status = finalStatus(op.exchange);
  const start = clock();
  if (status === 409 && problemCode(lastAttempt(op.exchange)?.body) === 'ConnectionExists' && op.ref) {
    const side: Side = op.side ?? 'record1';
    const record = recordOf(op.ref, side);
    const list = await readList(observer.baseUrl, listPath(record, otherRecordOf(op.ref, side)), observer.admin);
    op.conflict = { start, end: clock(), lists: [{ ...list, record }] };
    for (const view of viewsOf(list.items)) history.learnIds(view.connectionid, view.relatedconnectionid);
    return;
  }
  if (!is2xx(status)) return;
  const observation: Observation = { start, end: start };
  if (op.kind === 'cascade' && op.record) {
    observation.lists = [
      { ...(await readList(observer.baseUrl, listPath(op.record), observer.admin)), record: op.record },
    ];
  } else if (op.ref) {
    const ref = op.ref;
    if (op.kind === 'grant' || op.kind === 'revoke')
      observation.access = await bothHalves(observer, ref, observer.admin, '/access');
    else observation.halves = await bothHalves(observer, ref, observer.admin);
    if (op.kind === 'revoke' && op.principal) {
      const headers = observer.headersOf(op.principal);
      const [halves, lists] = await Promise.all([
        bothHalves(observer, ref, headers),
        Promise.all([
          readList(observer.baseUrl, listPath(ref.record1, ref.record2), headers),
          readList(observer.baseUrl, listPath(ref.record2, ref.record1), headers),
          ...observer.roles.map((role) => readList(observer.baseUrl, rolePath(role), headers)),
        ]),
      ]);
      observation.asPrincipal = { halves, lists };
    }
    if (op.kind === 'delete') {
      observation.lists = await Promise.all(
        [
          [ref.record1, ref.record2],
          [ref.record2, ref.record1],
        ].map(async ([record, other]) => ({
          ...(await readList(observer.baseUrl, listPath(record as string, other), observer.admin)),
          record: record as string,
        })),
      );
    }
  }
  observation.end = clock();
  op.after = observation;
}

/** The state read through the API once the load stopped, with the app up. */
export interface Snapshot {
  start: number;
  end: number;
  /** Both halves of every connection any create asked for, as an administrator reads them. */
  halves: Map<string, [Read, Read]>;
  /** Every record's connections, as an administrator lists them. */
  lists: Map<string, Read & { items?: unknown[] }>;
  /** Every role's connections (the role index), as an administrator queries them. */
  roleLists: Map<string, Read & { items?: unknown[] }>;
  /** For each revoke answered 2xx: what its principal reads, keyed `${principal} ${connection id}`. */
  asPrincipal: Map<string, { halves: [Read, Read]; lists: (Read & { items?: unknown[] })[] }>;
}

async function forEachLimited<T>(items: T[], limit: number, action: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await action(items[next++] as T);
    }),
  );
}

export async function takeSnapshot(history: History, observer: Observer, concurrency = 8): Promise<Snapshot> {
  const start = clock();
  const connections = history.connections();
  const records = [...new Set(connections.flatMap((ref) => [ref.record1, ref.record2]))];
  const snapshot: Snapshot = {
    start,
    end: start,
    halves: new Map(),
    lists: new Map(),
    roleLists: new Map(),
    asPrincipal: new Map(),
  };
  await forEachLimited(connections, concurrency, async (ref) => {
    snapshot.halves.set(ref.id, await bothHalves(observer, ref, observer.admin));
  });
  await forEachLimited(records, concurrency, async (record) => {
    snapshot.lists.set(record, await readList(observer.baseUrl, listPath(record), observer.admin));
  });
  await forEachLimited(observer.roles, concurrency, async (role) => {
    snapshot.roleLists.set(role, await readList(observer.baseUrl, rolePath(role), observer.admin));
  });
  const revoked = new Map<string, { principal: string; ref: ConnectionRef }>();
  for (const op of history.ops) {
    if (op.kind === 'revoke' && op.principal && op.ref && is2xx(finalStatus(op.exchange)))
      revoked.set(`${op.principal} ${op.ref.id}`, { principal: op.principal, ref: op.ref });
  }
  // A principal's lists are read once per record and role, however many of its shares were revoked.
  const principalLists = new Map<string, Promise<Read & { items?: unknown[] }>>();
  const listAs = (principal: string, path: string) => {
    const key = `${principal} ${path}`;
    const existing = principalLists.get(key);
    if (existing) return existing;
    const reading = readList(observer.baseUrl, path, observer.headersOf(principal));
    principalLists.set(key, reading);
    return reading;
  };
  await forEachLimited([...revoked], concurrency, async ([key, { principal, ref }]) => {
    const [halves, ...lists] = await Promise.all([
      bothHalves(observer, ref, observer.headersOf(principal)),
      listAs(principal, listPath(ref.record1)),
      listAs(principal, listPath(ref.record2)),
      ...observer.roles.map((role) => listAs(principal, rolePath(role))),
    ]);
    snapshot.asPrincipal.set(key, { halves, lists });
  });
  snapshot.end = clock();
  for (const list of snapshot.lists.values())
    for (const view of viewsOf(list.items)) history.learnIds(view.connectionid, view.relatedconnectionid);
  return snapshot;
}

// ---------------------------------------------------------------------------------------------------
// The invariants

export interface CheckContext {
  history: History;
  /** The state now (before or after repair). */
  snapshot: Snapshot;
  /** Earlier snapshots, whose reads also count as observations. */
  earlier?: Snapshot[];
  phase: 'before-repair' | 'after-repair';
}

/** What the principal reads of the connection: a list of ways it can, empty when none. */
function readableBy(
  reads: { halves: [Read, Read]; lists: (Read & { items?: unknown[] })[] },
  ref: ConnectionRef,
): string[] {
  const ways: string[] = [];
  if (reads.halves[0].status === 200) ways.push(`GET ${halfPath(ref, 'record1')} answers 200`);
  if (reads.halves[1].status === 200) ways.push(`GET ${halfPath(ref, 'record2')} answers 200`);
  if (reads.lists.some((list) => holds(list.items, ref))) ways.push('a list or role query shows it');
  return ways;
}

/** I5: A revoked reader reads nothing, through either half, either list or the role index. */
export function revokedReaderReadsNothing({ history, snapshot, phase }: CheckContext): Violation[] {
  const violations: Violation[] = [];
  for (const revoke of history.ops) {
    if (revoke.kind !== 'revoke' || !revoke.ref || !revoke.principal || !is2xx(finalStatus(revoke.exchange))) continue;
    const { ref, principal } = revoke;
    const regrants = history
      .touching(ref)
      .filter(
        (op) =>
          (op.kind === 'grant' && op.principal === principal) || (op.kind === 'assign' && op.ownerid === principal),
      );
    const at = revoke.after?.asPrincipal;
    if (
      phase === 'before-repair' &&
      at &&
      revoke.after &&
      !regrants.some((op) => mayActWithin(op, started(revoke), revoke.after?.end ?? 0))
    ) {
      const ways = readableBy(at, ref);
      if (ways.length > 0)
        violations.push({
          check: 'revoked-reader-reads-nothing',
          detail: `right after ${describe(revoke)} answered, ${principal}: ${ways.join('; ')}`,
        });
    }
    if (regrants.some((op) => mayHaveActed(op) && latestEffect(op) >= started(revoke))) continue;
    const now = snapshot.asPrincipal.get(`${principal} ${ref.id}`);
    const ways = now ? readableBy(now, ref) : [];
    if (ways.length > 0)
      violations.push({
        check: 'revoked-reader-reads-nothing',
        detail: `after the load, ${principal} still reads what ${describe(revoke)} revoked: ${ways.join('; ')}`,
      });
  }
  return violations;
}

/** I1: A 409 ConnectionExists names a connection the requesting record has, active, with those roles. */
export function conflictNamesLiveConnection({ history, snapshot, phase }: CheckContext): Violation[] {
  if (phase !== 'before-repair') return [];
  const violations: Violation[] = [];
  for (const op of history.ops) {
    const last = lastAttempt(op.exchange);
    if (!op.ref || last?.status !== 409 || problemCode(last.body) !== 'ConnectionExists') continue;
    const named = (last.body as { existingconnectionid?: unknown }).existingconnectionid;
    const side: Side = op.side ?? 'record1';
    const record = recordOf(op.ref, side);
    if (named === undefined) {
      // Named only to a caller who may read it: then an administrator must find an active connection
      // between the two records with those roles right after the 409, unless one was changed meanwhile.
      const other = otherRecordOf(op.ref, side);
      const observed = op.conflict?.lists?.[0];
      const end = op.conflict?.end ?? 0;
      const present =
        observed?.status !== 200 ||
        viewsOf(observed.items).some(
          (view) =>
            view.record1id === record &&
            view.record2id === other &&
            view.statecode === 0 &&
            (op.roles === undefined || (view.record1roleid === op.roles[0] && view.record2roleid === op.roles[1])),
        );
      const pair = [record, other].sort().join('/');
      const onPair = (candidate: Op) =>
        (candidate.ref !== undefined && [candidate.ref.record1, candidate.ref.record2].sort().join('/') === pair) ||
        (candidate.kind === 'cascade' && candidate.record !== undefined && [record, other].includes(candidate.record));
      const changed = history.ops.some(
        (candidate) =>
          candidate !== op &&
          onPair(candidate) &&
          (deleting(candidate) || candidate.kind === 'state' || candidate.kind === 'role') &&
          mayActWithin(candidate, last.start, end),
      );
      if (!present && !changed) {
        violations.push({
          check: 'conflict-names-live-connection',
          detail: `${describe(op)} answered 409 without naming a connection (the caller may not read it), yet record ${record} has no active connection with ${other} and those roles right after`,
        });
      }
      continue;
    }
    const existing = typeof named === 'string' ? history.refOf(named) : undefined;
    if (!existing) {
      violations.push({
        check: 'conflict-names-live-connection',
        detail: `${describe(op)} names ${JSON.stringify(named)}, which no create asked for`,
      });
      continue;
    }
    // Read right after the 409 if that read succeeded, else the state after the load.
    const observed = op.conflict?.lists?.[0];
    const lookedAt =
      observed?.status === 200
        ? { items: observed.items, end: op.conflict?.end ?? 0, when: 'right after the 409' }
        : { items: snapshot.lists.get(record)?.items, end: snapshot.end, when: 'after the load' };
    const found = viewsOf(lookedAt.items).find(
      (view) => view.record1id === record && [existing.id, existing.relatedId].includes(view.connectionid),
    );
    const changes = history
      .touching(existing)
      .filter((candidate) => candidate !== op && mayActWithin(candidate, last.start, lookedAt.end));
    const otherRecordStatus = snapshot.halves.get(existing.id)?.[record === existing.record1 ? 1 : 0]?.status;
    if (!found) {
      if (changes.some(deleting)) continue;
      violations.push({
        check: 'conflict-names-live-connection',
        detail: `${describe(op)} names ${JSON.stringify(named)} (created ${existing.record1} -> ${existing.record2}), which record ${record} does not have (${lookedAt.when}), and no delete ran meanwhile; through the other record it answers ${otherRecordStatus ?? 'nothing'} after the load`,
      });
      continue;
    }
    const rolesMatch =
      op.roles === undefined || (found.record1roleid === op.roles[0] && found.record2roleid === op.roles[1]);
    if (
      (found.statecode === 0 && rolesMatch) ||
      changes.some((candidate) => deleting(candidate) || candidate.kind === 'state' || candidate.kind === 'role')
    )
      continue;
    violations.push({
      check: 'conflict-names-live-connection',
      detail: `${describe(op)} names ${JSON.stringify(named)}, which record ${record} has with statecode ${found.statecode} and roles ${found.record1roleid}/${found.record2roleid} (${lookedAt.when}), not active with ${op.roles?.join('/') ?? 'its roles'}`,
    });
  }
  return violations;
}

/** Operations on the connection that may have acted and got no answer, or a 5xx: the halves may lag after them. */
const unfinished = (history: History, ref: ConnectionRef): Op[] =>
  history
    .touching(ref)
    .filter((op) => mayHaveActed(op) && !is2xx(finalStatus(op.exchange)) && isRetryable(finalStatus(op.exchange)));

/** I3: A created connection is readable through both records with the same fields, unless deleted. */
export function createdReadableFromBoth({ history, snapshot, phase }: CheckContext): Violation[] {
  const violations: Violation[] = [];
  for (const create of history.ops) {
    const status = finalStatus(create.exchange);
    if (create.kind !== 'create' || !create.ref || (status !== 200 && status !== 201)) continue;
    const ref = create.ref;
    if (history.touching(ref).some((op) => deleting(op) && mayHaveActed(op) && latestEffect(op) >= started(create)))
      continue;
    const halves = snapshot.halves.get(ref.id);
    if (!halves || halves[0].status === undefined || halves[1].status === undefined) continue;
    const [first, second] = [asView(halves[0].body), asView(halves[1].body)];
    if (halves[0].status !== 200 || halves[1].status !== 200 || !first || !second) {
      violations.push({
        check: 'created-readable-from-both',
        detail: `${describe(create)}, never deleted, reads ${halves[0].status} through record 1 and ${halves[1].status} through record 2`,
      });
      continue;
    }
    const answer = asView(lastAttempt(create.exchange)?.body);
    const changedIdentity = answer
      ? ['record1id', 'record2id', 'createdon', 'createdby'].filter(
          (field) => oriented(first, ref.record1)[field] !== oriented(answer, ref.record1)[field],
        )
      : [];
    if (changedIdentity.length > 0)
      violations.push({
        check: 'created-readable-from-both',
        detail: `${describe(create)}: ${changedIdentity.join(', ')} differ from the create's answer`,
      });
    const missing = [
      [ref.record1, ref.id],
      [ref.record2, ref.relatedId],
    ].filter(([record, id]) => {
      const list = snapshot.lists.get(record as string);
      return list?.status === 200 && !viewsOf(list.items).some((view) => view.connectionid === id);
    });
    if (missing.length > 0)
      violations.push({
        check: 'created-readable-from-both',
        detail: `${describe(create)}: missing from the list of ${missing.map(([record]) => record).join(' and ')}`,
      });
    const lagging = unfinished(history, ref);
    const fields = differences(first, second, ref.record1);
    if (fields.length > 0 && (phase === 'after-repair' || lagging.length === 0)) {
      const retried = history
        .touching(ref)
        .filter((op) => op.exchange.attempts.some((attempt) => isRetryable(attempt.status)));
      violations.push({
        check: 'created-readable-from-both',
        detail:
          `${describe(create)}: the halves differ in ${fields.join(', ')} (record 1 v${first.versionnumber}, record 2 v${second.versionnumber})` +
          (phase === 'after-repair' ? ' after repair' : ' although every operation on it ended with an answer') +
          (retried.length > 0 ? `; operations on it with failed attempts: ${retried.map(describe).join('; ')}` : ''),
      });
    }
  }
  return violations;
}

interface SureDelete {
  ref: ConnectionRef;
  by: Op;
}

/** Connections surely deleted: by a delete answered 2xx, or a cascade answered 2xx after their create answered. */
function surelyDeleted(history: History): SureDelete[] {
  const sure = new Map<string, SureDelete>();
  for (const op of history.ops) {
    if (!is2xx(finalStatus(op.exchange))) continue;
    if (op.kind === 'delete' && op.ref) {
      const ref = op.ref;
      const recreated = history
        .touching(ref)
        .some((other) => other.kind === 'create' && mayHaveActed(other) && latestEffect(other) >= started(op));
      if (!recreated && !sure.has(ref.id)) sure.set(ref.id, { ref, by: op });
    }
    if (op.kind === 'cascade' && op.record) {
      for (const ref of history.connections()) {
        if (ref.record1 !== op.record && ref.record2 !== op.record) continue;
        const creates = history.touching(ref).filter((other) => other.kind === 'create');
        const answeredBefore = creates.some(
          (create) => is2xx(finalStatus(create.exchange)) && ended(create) < started(op),
        );
        const recreated = creates.some((create) => latestEffect(create) >= started(op));
        if (answeredBefore && !recreated && !sure.has(ref.id)) sure.set(ref.id, { ref, by: op });
      }
    }
  }
  return [...sure.values()];
}

/** I4: What a delete answered 204 removed is gone from both records, both lists and the role index, for good. */
export function deletedStaysDeleted({ history, snapshot, phase }: CheckContext): Violation[] {
  const violations: Violation[] = [];
  for (const { ref, by } of surelyDeleted(history)) {
    const right = phase === 'before-repair' ? by.after?.halves : undefined;
    if (right && (right[0].status === 200 || right[1].status === 200)) {
      violations.push({
        check: 'deleted-stays-deleted',
        detail: `right after ${describe(by)} answered, the halves read ${right[0].status} and ${right[1].status}`,
      });
    }
    const listedRight =
      phase === 'before-repair' ? (by.after?.lists ?? []).filter((list) => holds(list.items, ref)) : [];
    if (listedRight.length > 0) {
      violations.push({
        check: 'deleted-stays-deleted',
        detail: `right after ${describe(by)} answered, the list of ${listedRight.map((list) => list.record).join(' and ')} still shows it`,
      });
    }
    const ways: string[] = [];
    const halves = snapshot.halves.get(ref.id);
    if (halves?.[0].status === 200) ways.push(`GET ${halfPath(ref, 'record1')} answers 200`);
    if (halves?.[1].status === 200) ways.push(`GET ${halfPath(ref, 'record2')} answers 200`);
    for (const record of [ref.record1, ref.record2])
      if (holds(snapshot.lists.get(record)?.items, ref)) ways.push(`the list of ${record} shows it`);
    for (const [role, list] of snapshot.roleLists)
      if (holds(list.items, ref)) ways.push(`the role query of ${role} (the role index) shows it`);
    if (ways.length > 0)
      violations.push({
        check: 'deleted-stays-deleted',
        detail: `after ${describe(by)} answered, ${ref.id} came back: ${ways.join('; ')}`,
      });
  }
  return violations;
}

/** I2: A 2xx answer is visible through both halves when it returns. */
export function visibleWhenAnswered({ history, phase }: CheckContext): Violation[] {
  if (phase !== 'before-repair') return [];
  const violations: Violation[] = [];
  for (const op of history.ops) {
    const after = op.after;
    if (!after || !op.ref || !is2xx(finalStatus(op.exchange))) continue;
    const ref = op.ref;
    const meanwhile = history
      .touching(ref)
      .filter((other) => other !== op && mayActWithin(other, started(op), after.end));
    const deletedMeanwhile = meanwhile.some(deleting);
    const answer = asView(lastAttempt(op.exchange)?.body);
    if (after.halves && op.kind !== 'delete') {
      after.halves.forEach((half, index) => {
        const side = index === 0 ? 'record 1' : 'record 2';
        if (half.status === 404 && !deletedMeanwhile) {
          violations.push({
            check: 'visible-when-answered',
            detail: `right after ${describe(op)} answered, its half in ${side} reads 404`,
          });
        }
        const view = asView(half.body);
        if (
          half.status === 200 &&
          view &&
          answer &&
          view.createdon === answer.createdon &&
          view.versionnumber < answer.versionnumber
        ) {
          violations.push({
            check: 'visible-when-answered',
            detail: `right after ${describe(op)} answered v${answer.versionnumber}, its half in ${side} reads v${view.versionnumber}`,
          });
        }
      });
    }
    if (after.halves && op.kind === 'delete') {
      const recreated = meanwhile.some((other) => other.kind === 'create');
      if (!recreated && after.halves.some((half) => half.status === 200)) {
        violations.push({
          check: 'visible-when-answered',
          detail: `right after ${describe(op)} answered, a half still reads 200`,
        });
      }
    }
    if (after.access && op.principal && (op.kind === 'grant' || op.kind === 'revoke')) {
      const principal = op.principal;
      const contrary = meanwhile.some(
        (other) =>
          deleting(other) ||
          (other.principal === principal &&
            other.kind !== op.kind &&
            (other.kind === 'grant' || other.kind === 'revoke')),
      );
      if (contrary) continue;
      after.access.forEach((access, index) => {
        if (access.status !== 200) return;
        const shares = (access.body as { value?: { principalid: string; accessmask: number }[] }).value ?? [];
        const share = shares.find((candidate) => candidate.principalid === principal);
        const side = index === 0 ? 'record 1' : 'record 2';
        if (op.kind === 'grant' && (!share || (share.accessmask & (op.mask ?? 0)) !== (op.mask ?? 0))) {
          violations.push({
            check: 'visible-when-answered',
            detail: `right after ${describe(op)} answered, the shares read through ${side} give ${principal} ${share?.accessmask ?? 'nothing'}`,
          });
        }
        if (op.kind === 'revoke' && share) {
          violations.push({
            check: 'visible-when-answered',
            detail: `right after ${describe(op)} answered, the shares read through ${side} still hold ${principal} (${share.accessmask})`,
          });
        }
      });
    }
  }
  return violations;
}

/** Every view of a connection the clients saw: answers, reads after answers, snapshots. */
function observedViews({ history, snapshot, earlier = [] }: CheckContext): { view: View; where: string }[] {
  const seen: { view: View; where: string }[] = [];
  const add = (body: unknown, where: string) => {
    const view = asView(body);
    if (view) seen.push({ view, where });
  };
  const addReads = (reads: Read[] | undefined, where: string) =>
    reads?.forEach((reading) => reading.status === 200 && add(reading.body, where));
  const addLists = (lists: (Read & { items?: unknown[] })[] | undefined, where: string) =>
    lists?.forEach((list) => list.items?.forEach((item) => add(item, where)));
  for (const op of history.ops) {
    const last = lastAttempt(op.exchange);
    if (is2xx(last?.status)) add(last?.body, `the answer to #${op.seq} ${op.kind}`);
    addReads(op.after?.halves, `a read after #${op.seq}`);
    addLists(op.after?.lists, `a list after #${op.seq}`);
    addLists(op.conflict?.lists, `a list after #${op.seq}`);
  }
  // Role index entries are left out: they are the index's copies, checked for what they list, not field by field.
  for (const [index, state] of [...earlier, snapshot].entries()) {
    const where = index === earlier.length ? 'the last snapshot' : `snapshot ${index + 1}`;
    for (const halves of state.halves.values()) addReads(halves, where);
    addLists([...state.lists.values()], where);
  }
  return seen;
}

/** I3: One version, one state: two reads of a connection at the same version agree on every field. */
export function oneStatePerVersion(context: CheckContext): Violation[] {
  const violations: Violation[] = [];
  const first = new Map<string, { view: View; where: string; ref: ConnectionRef }>();
  const reported = new Set<string>();
  for (const { view, where } of observedViews(context)) {
    const ref = context.history.refOf(view.connectionid);
    if (!ref) continue;
    const key = `${ref.id} ${view.createdon} ${view.versionnumber}`;
    const earlier = first.get(key);
    if (!earlier) {
      first.set(key, { view, where, ref });
      continue;
    }
    const fields = differences(earlier.view, view, ref.record1);
    if (fields.length === 0 || reported.has(key)) continue;
    reported.add(key);
    violations.push({
      check: 'one-state-per-version',
      detail: `${ref.id} v${view.versionnumber} differs in ${fields.join(', ')} between ${earlier.where} and ${where}`,
    });
  }
  return violations;
}

/** I6: A PATCH with If-Match refused with 412 at its only attempt was not applied. */
export function appliedNotRefused(context: CheckContext): Violation[] {
  const violations: Violation[] = [];
  const views = observedViews(context);
  for (const op of context.history.ops) {
    if (
      op.kind !== 'update' ||
      !op.ifMatch ||
      !op.description ||
      !op.ref ||
      op.exchange.attempts.length !== 1 ||
      finalStatus(op.exchange) !== 412
    )
      continue;
    const ref = op.ref;
    const applied = views.find(
      ({ view }) => [ref.id, ref.relatedId].includes(view.connectionid) && view.description === op.description,
    );
    if (applied)
      violations.push({
        check: 'applied-not-refused',
        detail: `${describe(op)} answered 412, but its change is there (v${applied.view.versionnumber}, seen in ${applied.where})`,
      });
  }
  return violations;
}

/** I8: No 500: every failure a client sees is a 503 it may retry. */
export function noInternalError({ history, phase }: CheckContext): Violation[] {
  if (phase !== 'before-repair') return [];
  return history.ops.flatMap((op) =>
    op.exchange.attempts
      .filter((attempt) => attempt.status === 500)
      .map((attempt) => ({
        check: 'no-internal-error' as const,
        detail: `${describe(op)}: 500 ${JSON.stringify(attempt.body).slice(0, 200)}`,
      })),
  );
}

/** I1: After repair: at most one active connection per pair of records and roles. */
export function oneActivePerPair({ history, snapshot, phase }: CheckContext): Violation[] {
  if (phase !== 'after-repair') return [];
  const holders = new Map<string, Set<string>>();
  for (const list of snapshot.lists.values()) {
    for (const view of viewsOf(list.items)) {
      if (view.statecode !== 0) continue;
      const low = view.record1id < view.record2id;
      const key = low
        ? `${view.record1id} ${view.record2id} ${view.record1roleid} ${view.record2roleid}`
        : `${view.record2id} ${view.record1id} ${view.record2roleid} ${view.record1roleid}`;
      const identity =
        history.refOf(view.connectionid)?.id ?? [view.connectionid, view.relatedconnectionid].sort().join('/');
      holders.set(key, (holders.get(key) ?? new Set()).add(identity));
    }
  }
  return [...holders]
    .filter(([, ids]) => ids.size > 1)
    .map(([key, ids]) => ({
      check: 'one-active-per-pair' as const,
      detail: `${ids.size} active connections for records and roles ${key}: ${[...ids].join(', ')}`,
    }));
}

/** I7: After repair: both halves of every connection, mirroring each other, or neither. */
export function halvesMirror({ history, snapshot, phase }: CheckContext): Violation[] {
  if (phase !== 'after-repair') return [];
  const violations: Violation[] = [];
  for (const ref of history.connections()) {
    const halves = snapshot.halves.get(ref.id);
    if (!halves) continue;
    const [first, second] = halves;
    if (first.status === 404 && second.status === 404) continue;
    const [a, b] = [asView(first.body), asView(second.body)];
    if (first.status !== 200 || second.status !== 200 || !a || !b) {
      violations.push({
        check: 'halves-mirror',
        detail: `${ref.id} (${ref.record1} -> ${ref.record2}): record 1 reads ${first.status}, record 2 reads ${second.status}`,
      });
      continue;
    }
    const fields = differences(a, b, ref.record1);
    if (fields.length > 0)
      violations.push({
        check: 'halves-mirror',
        detail: `${ref.id}: the halves differ in ${fields.join(', ')} (v${a.versionnumber} and v${b.versionnumber})`,
      });
  }
  return violations;
}

const EVERY_CHECK = [
  revokedReaderReadsNothing,
  conflictNamesLiveConnection,
  createdReadableFromBoth,
  deletedStaysDeleted,
  visibleWhenAnswered,
  oneStatePerVersion,
  appliedNotRefused,
  noInternalError,
  oneActivePerPair,
  halvesMirror,
];

/** Every invariant that applies in the context's phase. */
export function checkInvariants(context: CheckContext): Violation[] {
  return EVERY_CHECK.flatMap((check) => check(context));
}

// ---------------------------------------------------------------------------------------------------
// The repair job and the checker

export interface RepairOutcome {
  /** What the repair found (and repaired). */
  repaired: string[];
  /** What the checker still finds afterwards, or the repair's own failure. */
  left: Violation[];
  scanned: number;
}

const checkerLine = (violation: CheckerViolation) =>
  `${violation.kind} ${violation.table} ${violation.partitionKey}/${violation.rowKey}: ${violation.detail}`;

/**
 * Runs the repair job over every row as the timer function does (`repairSlice`, resuming from its
 * checkpoint, until a pass completes), then the checker (`npm run check`'s walk); a repair that
 * throws is a violation too. The one place that knows the repair job's library interface.
 */
export async function repairAndCheck(walker: ConsistencyWalker, maxSlices = 20): Promise<RepairOutcome> {
  const repaired: string[] = [];
  try {
    for (let round = 0; round < maxSlices; round++) {
      const result = await repairSlice(walker, 60_000, 0);
      repaired.push(...result.violations.map(checkerLine));
      if (result.next === undefined) break;
    }
    const checked = await walker.walk({ repair: false, graceMs: 0 });
    return {
      repaired,
      left: checked.violations.map((violation) => ({ check: 'checker-clean', detail: checkerLine(violation) })),
      scanned: checked.scanned,
    };
  } catch (error) {
    return {
      repaired,
      left: [
        {
          check: 'checker-clean',
          detail: `the repair job failed: ${error instanceof Error ? error.message : String(error)}`,
        },
      ],
      scanned: 0,
    };
  }
}

/** How much of the history the invariants could check: a run that checked nothing proves nothing. */
export interface Coverage {
  revokesAnswered: number;
  revokesReadAfter: number;
  conflictsNamed: number;
  createsAnswered: number;
  deletesAnswered: number;
  cascadesAnswered: number;
  answersReadAfter: number;
  /** Operations with an attempt that got no answer or a 5xx. */
  interrupted: number;
}

export function coverage(history: History): Coverage {
  const answered = (op: Op) => is2xx(finalStatus(op.exchange));
  const count = (predicate: (op: Op) => boolean) => history.ops.filter(predicate).length;
  return {
    revokesAnswered: count((op) => op.kind === 'revoke' && answered(op)),
    revokesReadAfter: count((op) => op.kind === 'revoke' && op.after?.asPrincipal !== undefined),
    conflictsNamed: count(
      (op) => finalStatus(op.exchange) === 409 && problemCode(lastAttempt(op.exchange)?.body) === 'ConnectionExists',
    ),
    createsAnswered: count((op) => op.kind === 'create' && answered(op)),
    deletesAnswered: count((op) => op.kind === 'delete' && answered(op)),
    cascadesAnswered: count((op) => op.kind === 'cascade' && answered(op)),
    answersReadAfter: count((op) => op.after !== undefined),
    interrupted: count((op) => op.exchange.attempts.some((attempt) => isRetryable(attempt.status))),
  };
}

/** Violations grouped by check, each titled with its invariant, a few of each, for a failure message or the soak's output. */
export function formatViolations(violations: Violation[], perCheck = 8): string {
  const grouped = new Map<CheckName, string[]>();
  for (const violation of violations)
    grouped.set(violation.check, [...(grouped.get(violation.check) ?? []), violation.detail]);
  return [...grouped]
    .map(([name, details]) =>
      [
        `${checkTitle(name)} (${details.length}): ${CHECKS[name].statement}`,
        ...details.slice(0, perCheck).map((detail) => `  - ${detail}`),
        ...(details.length > perCheck ? [`  - ... and ${details.length - perCheck} more`] : []),
      ].join('\n'),
    )
    .join('\n');
}

export function countByCheck(violations: Violation[]): Partial<Record<CheckName, number>> {
  const counts: Partial<Record<CheckName, number>> = {};
  for (const violation of violations) counts[violation.check] = (counts[violation.check] ?? 0) + 1;
  return counts;
}

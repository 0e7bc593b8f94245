// Dev, load: the mixed load several HTTP clients send at once, shared by the crash test and the soak.
import { randomUUID } from 'node:crypto';
import { type Observer, observeAfter } from './invariants';
import {
  type ConnectionRef,
  type Exchange,
  GIVE_UP_AT_ONCE,
  type Headers,
  type History,
  type Op,
  type RetryPolicy,
  type Side,
  clock,
  finalStatus,
  halfPath,
  identity,
  is2xx,
  isRetryable,
  lastAttempt,
  newRef,
  perform,
  POWER_AUTOMATE,
} from './traffic';

/**
 * Mixed load from several clients at once, shared by the crash test and the soak: creates with a
 * client-chosen connectionid from both directions among a few records, updates with and without
 * If-Match, deactivation and reactivation, role changes, assignment, grants and revokes, deletes, and
 * now and then an administrator's cascade delete of a record. Every client retries as Power Automate
 * does (some give up at once), records everything in the history, and reads right after each answer
 * what the invariants need.
 */
export interface WorkloadRecord {
  id: string;
  type: string;
}

export interface WorkloadSetup {
  baseUrl: string;
  records: WorkloadRecord[];
  /** Active roles that match themselves and apply to every type. */
  roles: string[];
  /** Principals that only read: grants and revokes name them, nothing makes them owners. */
  readers: string[];
  /** A team every client is in; assignment gives connections to it so that every client may change them. */
  team: string;
  clients: number;
  /** How many clients (the last ones) give up at the first failure instead of retrying. */
  giveUpAtOnce: number;
  durationMs: number;
  /** Client 0 cascades a record at most this often. */
  cascadeEveryMs: number;
  random: () => number;
  history: History;
  observer: Observer;
  /** The other clients' policy. */
  policy?: RetryPolicy;
}

export interface WorkloadStats {
  operations: number;
  byStatus: Map<string, number>;
  byKind: Map<string, number>;
  /** Attempts beyond the first. */
  retries: number;
  /** Operations left without an answer other than a retryable failure. */
  gaveUp: number;
}

/** A small seeded generator (mulberry32), so a run's choices can be told apart by its seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Known {
  ref: ConnectionRef;
  etag?: string;
  granted: Set<string>;
}

/** The connections clients know of (answered 2xx to a create), shared so that clients contend on them. */
class Pool {
  private readonly items: Known[] = [];
  private readonly index = new Map<string, number>();

  add(ref: ConnectionRef, etag?: string): void {
    if (this.index.has(ref.id)) return;
    this.index.set(ref.id, this.items.length);
    this.items.push({ ref, ...(etag && { etag }), granted: new Set() });
  }

  get(id: string): Known | undefined {
    const position = this.index.get(id);
    return position === undefined ? undefined : this.items[position];
  }

  remove(id: string): void {
    const position = this.index.get(id);
    if (position === undefined) return;
    const last = this.items.pop() as Known;
    this.index.delete(id);
    if (last.ref.id !== id) {
      this.items[position] = last;
      this.index.set(last.ref.id, position);
    }
  }

  removeRecord(record: string): void {
    for (const known of [...this.items])
      if (known.ref.record1 === record || known.ref.record2 === record) this.remove(known.ref.id);
  }

  /** The known connection at an index (modulo how many are known); undefined when none is. */
  at(index: number): Known | undefined {
    return this.items.length === 0 ? undefined : this.items[index % this.items.length];
  }
}

/**
 * One operation a client chooses, as data: indices pick records, roles, readers and known connections
 * (modulo how many there are), so the same choice works whatever the pool holds when it runs. The
 * workload draws steps at random; the model test generates them with fast-check.
 */
export type Step =
  | { kind: 'create'; first: number; second: number; role: number; admin: boolean }
  | { kind: 'update'; pick: number; side: Side; ifMatch: boolean; admin: boolean }
  | { kind: 'state'; pick: number; side: Side; state: 0 | 1; admin: boolean }
  | { kind: 'role'; pick: number; side: Side; role: number; admin: boolean }
  | { kind: 'assign'; pick: number; side: Side; toTeam: boolean; client: number; admin: boolean }
  | { kind: 'grant'; pick: number; side: Side; reader: number; mask: 1 | 3; admin: boolean }
  | { kind: 'revoke'; pick: number; side: Side; reader: number; granted: boolean; admin: boolean }
  | { kind: 'delete'; pick: number; side: Side; ifMatch: boolean; admin: boolean }
  | { kind: 'cascade'; record: number };

/** A step drawn at random, in the workload's proportions. */
export function randomStep(random: () => number): Step {
  const index = () => Math.floor(random() * 1_000_000);
  const admin = random() < 0.5;
  const side: Side = random() < 0.5 ? 'record1' : 'record2';
  const dice = random();
  if (dice < 0.25) return { kind: 'create', first: index(), second: index(), role: index(), admin };
  if (dice < 0.41) return { kind: 'update', pick: index(), side, ifMatch: random() < 0.4, admin };
  if (dice < 0.49) return { kind: 'state', pick: index(), side, state: random() < 0.5 ? 1 : 0, admin };
  if (dice < 0.56) return { kind: 'role', pick: index(), side, role: index(), admin };
  if (dice < 0.61) return { kind: 'assign', pick: index(), side, toTeam: random() < 0.6, client: index(), admin };
  if (dice < 0.74) return { kind: 'grant', pick: index(), side, reader: index(), mask: random() < 0.7 ? 1 : 3, admin };
  if (dice < 0.88) return { kind: 'revoke', pick: index(), side, reader: index(), granted: random() < 0.8, admin };
  return { kind: 'delete', pick: index(), side, ifMatch: random() < 0.25, admin };
}

export type Planned = Omit<Op, 'seq' | 'exchange'> & { request: Exchange['request'] };

export interface Cast {
  records: WorkloadRecord[];
  roles: string[];
  readers: string[];
  team: string;
  /** The clients' object ids; client i acts as clientIds[i], in the team, as a user or as an administrator. */
  clientIds: string[];
}

const at = <T>(items: readonly T[], index: number): T =>
  items[((index % items.length) + items.length) % items.length] as T;

/**
 * The connections the clients know of (created with a 2xx answer), shared by every client so that
 * they contend on them, and how a step becomes a request against them.
 */
export class Workload {
  private readonly pool = new Pool();

  constructor(
    private readonly cast: Cast,
    private readonly history: History,
  ) {}

  headersOf(client: number, admin: boolean): Headers {
    return identity(at(this.cast.clientIds, client), { teams: [this.cast.team], admin });
  }

  /** The request a step makes now; a step on a connection when none is known yet creates one instead. */
  plan(client: number, step: Step, tag: string): Planned {
    const name = `client${client}`;
    const roles: (string | null)[] = [null, ...this.cast.roles];
    if (step.kind === 'cascade') {
      const record = at(this.cast.records, step.record).id;
      return {
        client: name,
        kind: 'cascade',
        record,
        request: { method: 'DELETE', path: `/records/${record}/connections`, headers: this.headersOf(client, true) },
      };
    }
    const as = this.headersOf(client, step.admin);
    const known = step.kind === 'create' ? undefined : this.pool.at(step.pick);
    if (step.kind === 'create' || !known) {
      const choice = step.kind === 'create' ? step : { first: step.pick, second: step.pick + 1, role: 0 };
      const first = at(this.cast.records, choice.first);
      const others = this.cast.records.filter((record) => record.id !== first.id);
      const second = at(others, choice.second);
      const role = at(roles, choice.role);
      const ref = newRef(randomUUID(), first.id, second.id);
      return {
        client: name,
        kind: 'create',
        ref,
        roles: [role, role],
        description: tag,
        request: {
          method: 'POST',
          path: '/connections',
          headers: as,
          body: {
            connectionid: ref.id,
            record1id: first.id,
            record1objecttypecode: first.type,
            record2id: second.id,
            record2objecttypecode: second.type,
            description: tag,
            ...(role && { record1roleid: role, record2roleid: role }),
          },
        },
      };
    }
    const { ref } = known;
    const side = step.side;
    const path = halfPath(ref, side);
    const withIfMatch = (wanted: boolean): Headers => (wanted && known.etag ? { ...as, 'if-match': known.etag } : as);
    switch (step.kind) {
      case 'update': {
        const sent = withIfMatch(step.ifMatch);
        return {
          client: name,
          kind: 'update',
          ref,
          side,
          description: tag,
          ...(sent['if-match'] && { ifMatch: sent['if-match'] }),
          request: { method: 'PATCH', path, headers: sent, body: { description: tag } },
        };
      }
      case 'state':
        return {
          client: name,
          kind: 'state',
          ref,
          side,
          state: step.state,
          request: { method: 'PATCH', path, headers: as, body: { statecode: step.state } },
        };
      case 'role': {
        const role = at(roles, step.role);
        return {
          client: name,
          kind: 'role',
          ref,
          side,
          roles: [role, role],
          request: { method: 'PATCH', path, headers: as, body: { record1roleid: role, record2roleid: role } },
        };
      }
      case 'assign': {
        const ownerid = step.toTeam ? this.cast.team : at(this.cast.clientIds, step.client);
        return {
          client: name,
          kind: 'assign',
          ref,
          side,
          ownerid,
          request: { method: 'PATCH', path, headers: as, body: { ownerid } },
        };
      }
      case 'grant': {
        const principal = at(this.cast.readers, step.reader);
        return {
          client: name,
          kind: 'grant',
          ref,
          side,
          principal,
          mask: step.mask,
          request: {
            method: 'POST',
            path: `${path}/access`,
            headers: as,
            body: { principalid: principal, principaltype: 'systemuser', accessmask: step.mask },
          },
        };
      }
      case 'revoke': {
        const granted = [...known.granted];
        const principal =
          step.granted && granted.length > 0 ? at(granted, step.reader) : at(this.cast.readers, step.reader);
        return {
          client: name,
          kind: 'revoke',
          ref,
          side,
          principal,
          request: { method: 'DELETE', path: `${path}/access/${principal}`, headers: as },
        };
      }
      case 'delete': {
        const sent = withIfMatch(step.ifMatch);
        return {
          client: name,
          kind: 'delete',
          ref,
          side,
          ...(sent['if-match'] && { ifMatch: sent['if-match'] }),
          request: { method: 'DELETE', path, headers: sent },
        };
      }
    }
  }

  /** Records a planned request in the history, ready to be sent. */
  begin(planned: Planned): Op {
    const { request, ...fields } = planned;
    return this.history.add({ ...fields, exchange: { request, attempts: [] } });
  }

  /** What clients learn from an answer: new connections, ETags, shares, deletions. */
  learn(op: Op): void {
    const last = lastAttempt(op.exchange);
    const status = finalStatus(op.exchange);
    const body = last?.body as { connectionid?: string; relatedconnectionid?: string } | undefined;
    if (op.kind === 'cascade' && op.record && is2xx(status)) this.pool.removeRecord(op.record);
    if (!op.ref) return;
    if (
      op.kind === 'create' &&
      (status === 200 || status === 201) &&
      body?.connectionid === op.ref.id &&
      body.relatedconnectionid
    ) {
      this.history.learnRelatedId(op.ref, body.relatedconnectionid);
      this.pool.add(op.ref, last?.etag);
    }
    const known = this.pool.get(op.ref.id);
    if (!known) return;
    if (is2xx(status) && last?.etag) known.etag = last.etag;
    if (op.kind === 'grant' && is2xx(status) && op.principal) known.granted.add(op.principal);
    if (op.kind === 'revoke' && is2xx(status) && op.principal) known.granted.delete(op.principal);
    if (op.kind === 'delete' && (is2xx(status) || status === 404)) this.pool.remove(op.ref.id);
  }
}

export function newStats(): WorkloadStats {
  return { operations: 0, byStatus: new Map(), byKind: new Map(), retries: 0, gaveUp: 0 };
}

export function count(stats: WorkloadStats, op: Op): void {
  const status = finalStatus(op.exchange);
  stats.operations++;
  stats.retries += Math.max(0, op.exchange.attempts.length - 1);
  if (isRetryable(status)) stats.gaveUp++;
  const key = String(status ?? 'no answer');
  stats.byStatus.set(key, (stats.byStatus.get(key) ?? 0) + 1);
  stats.byKind.set(op.kind, (stats.byKind.get(op.kind) ?? 0) + 1);
}

/** Runs the mixed load for the setup's duration; resolves when every client's last operation is done. */
export async function runWorkload(setup: WorkloadSetup): Promise<WorkloadStats> {
  const { random } = setup;
  const clientIds = Array.from({ length: setup.clients }, () => randomUUID());
  const workload = new Workload(
    { records: setup.records, roles: setup.roles, readers: setup.readers, team: setup.team, clientIds },
    setup.history,
  );
  const stats = newStats();
  const deadline = clock() + setup.durationMs;
  let lastCascade = clock();

  async function client(index: number): Promise<void> {
    const policy = index >= setup.clients - setup.giveUpAtOnce ? GIVE_UP_AT_ONCE : (setup.policy ?? POWER_AUTOMATE);
    for (let number = 0; clock() < deadline; number++) {
      let step = randomStep(random);
      // Now and then client 0, an administrator, deletes every connection of a record (it was deleted upstream).
      if (index === 0 && clock() - lastCascade > setup.cascadeEveryMs) {
        lastCascade = clock();
        step = { kind: 'cascade', record: Math.floor(random() * setup.records.length) };
      }
      const op = workload.begin(workload.plan(index, step, `client${index} op${number} ${randomUUID().slice(0, 8)}`));
      await perform(setup.baseUrl, op.exchange, policy, random);
      workload.learn(op);
      count(stats, op);
      if (isRetryable(finalStatus(op.exchange))) {
        // A flow run that failed does not start again at once: the next run comes a little later.
        await new Promise((resolve) => setTimeout(resolve, 200 + random() * 600));
      }
      await observeAfter(op, setup.observer, setup.history);
    }
  }

  await Promise.all(Array.from({ length: setup.clients }, (_, index) => client(index)));
  return stats;
}

export function formatStats(stats: WorkloadStats): string {
  const sorted = (map: Map<string, number>) =>
    [...map]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([key, count]) => `${key}×${count}`)
      .join(', ');
  return `operations: ${stats.operations} (${sorted(stats.byKind)}); answers: ${sorted(stats.byStatus)}; retries: ${stats.retries}; given up: ${stats.gaveUp}`;
}

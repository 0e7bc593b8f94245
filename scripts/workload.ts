import { randomUUID } from 'node:crypto';
import { type Observer, observeAfter } from './invariants';
import {
  type ConnectionRef, type Exchange, GIVE_UP_AT_ONCE, type Headers, type History, type Op, type RetryPolicy, type Side,
  clock, finalStatus, halfPath, identity, is2xx, isRetryable, lastAttempt, newRef, perform, POWER_AUTOMATE,
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
    for (const known of [...this.items]) if (known.ref.record1 === record || known.ref.record2 === record) this.remove(known.ref.id);
  }

  pick(random: () => number): Known | undefined {
    return this.items[Math.floor(random() * this.items.length)];
  }

  get size(): number {
    return this.items.length;
  }
}

type Planned = Omit<Op, 'seq' | 'exchange'> & { request: Exchange['request'] };

export async function runWorkload(setup: WorkloadSetup): Promise<WorkloadStats> {
  const { random, history } = setup;
  const pool = new Pool();
  const stats: WorkloadStats = { operations: 0, byStatus: new Map(), byKind: new Map(), retries: 0, gaveUp: 0 };
  const clientIds = Array.from({ length: setup.clients }, () => randomUUID());
  const deadline = clock() + setup.durationMs;
  let lastCascade = clock();
  const choose = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const roleChoices: (string | null)[] = [null, ...setup.roles];

  function plan(client: number, headers: { user: Headers; admin: Headers }, tag: string): Planned | undefined {
    const name = `client${client}`;
    const as = random() < 0.5 ? headers.admin : headers.user;
    if (client === 0 && clock() - lastCascade > setup.cascadeEveryMs) {
      lastCascade = clock();
      const record = choose(setup.records).id;
      return { client: name, kind: 'cascade', record, request: { method: 'DELETE', path: `/records/${record}/connections`, headers: headers.admin } };
    }
    const dice = random();
    const known = pool.pick(random);
    if (dice < 0.25 || !known) {
      const first = choose(setup.records);
      const second = choose(setup.records.filter((record) => record.id !== first.id));
      const role = choose(roleChoices);
      const ref = newRef(randomUUID(), first.id, second.id);
      return {
        client: name, kind: 'create', ref, roles: [role, role], description: tag,
        request: {
          method: 'POST', path: '/connections', headers: as,
          body: {
            connectionid: ref.id, record1id: first.id, record1objecttypecode: first.type, record2id: second.id, record2objecttypecode: second.type,
            description: tag, ...(role && { record1roleid: role, record2roleid: role }),
          },
        },
      };
    }
    const { ref } = known;
    const side: Side = random() < 0.5 ? 'record1' : 'record2';
    const path = halfPath(ref, side);
    const withIfMatch = (share: number): Headers => (known.etag && random() < share ? { ...as, 'if-match': known.etag } : as);
    if (dice < 0.41) {
      const sent = withIfMatch(0.4);
      return { client: name, kind: 'update', ref, side, description: tag, ...(sent['if-match'] && { ifMatch: sent['if-match'] }), request: { method: 'PATCH', path, headers: sent, body: { description: tag } } };
    }
    if (dice < 0.49) {
      const state = random() < 0.5 ? 1 : 0;
      return { client: name, kind: 'state', ref, side, state, request: { method: 'PATCH', path, headers: as, body: { statecode: state } } };
    }
    if (dice < 0.56) {
      const role = choose(roleChoices);
      return { client: name, kind: 'role', ref, side, roles: [role, role], request: { method: 'PATCH', path, headers: as, body: { record1roleid: role, record2roleid: role } } };
    }
    if (dice < 0.61) {
      const ownerid = random() < 0.6 ? setup.team : choose(clientIds);
      return { client: name, kind: 'assign', ref, side, ownerid, request: { method: 'PATCH', path, headers: as, body: { ownerid } } };
    }
    if (dice < 0.74) {
      const principal = choose(setup.readers);
      const mask = random() < 0.7 ? 1 : 3;
      return {
        client: name, kind: 'grant', ref, side, principal, mask,
        request: { method: 'POST', path: `${path}/access`, headers: as, body: { principalid: principal, principaltype: 'systemuser', accessmask: mask } },
      };
    }
    if (dice < 0.88) {
      const granted = [...known.granted];
      const principal = granted.length > 0 && random() < 0.8 ? choose(granted) : choose(setup.readers);
      return { client: name, kind: 'revoke', ref, side, principal, request: { method: 'DELETE', path: `${path}/access/${principal}`, headers: as } };
    }
    const sent = withIfMatch(0.25);
    return { client: name, kind: 'delete', ref, side, ...(sent['if-match'] && { ifMatch: sent['if-match'] }), request: { method: 'DELETE', path, headers: sent } };
  }

  /** What a client learns from an answer: new connections, ETags, deletions. */
  function learn(op: Op): void {
    const last = lastAttempt(op.exchange);
    const status = finalStatus(op.exchange);
    const body = last?.body as { connectionid?: string; relatedconnectionid?: string } | undefined;
    if (op.kind === 'cascade' && op.record && is2xx(status)) pool.removeRecord(op.record);
    if (!op.ref) return;
    if (op.kind === 'create' && (status === 200 || status === 201) && body?.connectionid === op.ref.id && body.relatedconnectionid) {
      history.learnTwinId(op.ref, body.relatedconnectionid);
      pool.add(op.ref, last?.etag);
    }
    const known = pool.get(op.ref.id);
    if (!known) return;
    if (is2xx(status) && last?.etag) known.etag = last.etag;
    if (op.kind === 'grant' && is2xx(status) && op.principal) known.granted.add(op.principal);
    if (op.kind === 'revoke' && is2xx(status) && op.principal) known.granted.delete(op.principal);
    if (op.kind === 'delete' && (is2xx(status) || status === 404)) pool.remove(op.ref.id);
  }

  async function client(index: number): Promise<void> {
    const id = clientIds[index] as string;
    const headers = { user: identity(id, { teams: [setup.team] }), admin: identity(id, { teams: [setup.team], admin: true }) };
    const policy = index >= setup.clients - setup.giveUpAtOnce ? GIVE_UP_AT_ONCE : (setup.policy ?? POWER_AUTOMATE);
    for (let count = 0; clock() < deadline; count++) {
      const planned = plan(index, headers, `client${index} op${count} ${randomUUID().slice(0, 8)}`);
      if (!planned) continue;
      const { request, ...fields } = planned;
      const op = history.add({ ...fields, exchange: { request, attempts: [] } });
      await perform(setup.baseUrl, op.exchange, policy, random);
      learn(op);
      stats.operations++;
      stats.retries += op.exchange.attempts.length - 1;
      const status = finalStatus(op.exchange);
      if (isRetryable(status)) {
        stats.gaveUp++;
        // A flow run that failed does not start again at once: the next run comes a little later.
        await new Promise((resolve) => setTimeout(resolve, 200 + random() * 600));
      }
      const key = String(status ?? 'no answer');
      stats.byStatus.set(key, (stats.byStatus.get(key) ?? 0) + 1);
      stats.byKind.set(op.kind, (stats.byKind.get(op.kind) ?? 0) + 1);
      await observeAfter(op, setup.observer);
    }
  }

  await Promise.all(Array.from({ length: setup.clients }, (_, index) => client(index)));
  return stats;
}

export function formatStats(stats: WorkloadStats): string {
  const sorted = (map: Map<string, number>) => [...map].sort(([a], [b]) => a.localeCompare(b)).map(([key, count]) => `${key}×${count}`).join(', ');
  return `operations: ${stats.operations} (${sorted(stats.byKind)}); answers: ${sorted(stats.byStatus)}; retries: ${stats.retries}; given up: ${stats.gaveUp}`;
}

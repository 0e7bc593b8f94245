import { type ConnectionHalf, createConnectionSchema, etagOf, reciprocalOf, sameContent, updateConnectionSchema } from '../../shared/domain/connection';
import { requestPrint } from '../../shared/useCases/connectionCommands';
import { DomainError } from '../../shared/domain/errors';
import { reciprocalIdOf } from '../../shared/domain/ids';
import { buildObjectTypeRegistry } from '../../shared/domain/objectTypes';
import { CLAIM_GRACE_MS } from '../../shared/protocol/claims';
import { derivedOf } from '../../shared/protocol/propagation';
import { authoritativeOf, claimsGuard, isAuthoritative, isLater, pairsWith, type StoredCopy } from '../../shared/protocol/copies';
import { currentIndexKeys } from '../../shared/protocol/indexKeys';
import { latestRequest } from '../../shared/protocol/stamps';
import { createDomain } from '../../shared/useCases/services';
import { claimPartitionOf, fromStored, guardRowKey, halfRowKey, isGuardRowKey } from '../../shared/storage/connectionStore';
import { asDomainError } from '../../shared/storage/storageErrors';
import { indexRowKey, isReservationRowKey } from '../../shared/storage/roleIndexStore';
import type { Caller } from '../../shared/domain/caller';
import { Prng } from './prng';
import { type Faults, type Outcome, Scheduler } from './scheduler';
import { SimTableService } from './simTable';

/**
 * Deterministic simulation of the write protocol: the app's own domain and storage code (createDomain)
 * over the simulated table service, several clients at once, every storage call a step the seeded
 * scheduler orders and may fail, lose the answer of, repeat (the SDK's retry after a lost answer) or
 * crash the caller at. Clients retry what failed with the same request, as Power Automate does, or give
 * up. Then the tables are left alone, the repair job runs, and every invariant of the README is checked:
 * against the raw tables (not through the code under test), against what each client was answered, and
 * by the checker itself.
 *
 * One seed is one schedule: `runSchedule(seed)` is a pure function of the seed, so a failing seed replays.
 */

/** The command that replays one schedule alone, printing its every storage step. */
export const replayCommand = (seed: number): string => `npm run simulate -- --seed ${seed} --trace`;

export const TABLES = { connections: 'Connections', roles: 'ConnectionRoles', roleIndex: 'ConnectionRoleIndex' } as const;

// Three records in id order: A's partition is the authoritative one of A-B and A-C, B's of B-C.
const A = '1aaaaaaa-0000-4000-8000-000000000001';
const B = '2bbbbbbb-0000-4000-8000-000000000002';
const C = '3ccccccc-0000-4000-8000-000000000003';
// Below A: its connection to B has its authoritative half in Z's partition and its other half in B's.
const Z = '0fffffff-0000-4000-8000-000000000000';
const RECORDS = [A, B, C];
const TYPES: Record<string, string> = { [A]: 'account', [B]: 'contact', [C]: 'contact', [Z]: 'account' };
// A role that matches itself; a connection with it has it on both sides.
const ROLE = 'e0000000-0000-4000-8000-00000000000e';
// A second role, matching the first: a connection may have them either way round, so a role can move
// from one record's side to the other.
const ROLE2 = 'e0000000-0000-4000-8000-0000000000e2';
const ROLES = [ROLE, ROLE2] as const;
type RoleId = (typeof ROLES)[number];
/** The roles of a `role` operation: both sides the first role, each side one of them, or none. */
const ROLE_PAIRS: [RoleId | null, RoleId | null][] = [[ROLE, ROLE], [ROLE, ROLE2], [ROLE2, ROLE], [null, null]];

const alice: Caller = { id: 'a11ce000-0000-4000-8000-000000000001', teams: [], isAdmin: false };
const bob: Caller = { id: 'b0b00000-0000-4000-8000-000000000002', teams: [], isAdmin: false };
const admin: Caller = { id: 'ad000000-0000-4000-8000-00000000000a', teams: [], isAdmin: true };
const CAROL = 'ca201000-0000-4000-8000-000000000003';

/** The connection ids clients use, each for one ordered pair: c1 and c2 are the same pair both ways. */
const POOL = [
  { id: 'c1c1c1c1-0000-4000-8000-000000000001', from: A, to: B },
  { id: 'c2c2c2c2-0000-4000-8000-000000000002', from: B, to: A },
  { id: 'c3c3c3c3-0000-4000-8000-000000000003', from: C, to: B },
  // c1's id again, between other records: its other half would take the slot of c1's other half in B.
  { id: 'c1c1c1c1-0000-4000-8000-000000000001', from: Z, to: B },
  // c1's id between records it shares no slot with, and c1's other half's id: both refused while c1 has them.
  { id: 'c1c1c1c1-0000-4000-8000-000000000001', from: Z, to: C },
  { id: reciprocalIdOf('c1c1c1c1-0000-4000-8000-000000000001'), from: C, to: Z },
] as const;
type PoolEntry = (typeof POOL)[number];

/**
 * The repair job's grace period during a run: longer than any schedule lasts, so no purge races a
 * write of an older version (the protocol's assumption); the run starts this long after the setup, so
 * the setup's tombstones are purged while the run's requests create the same ids again.
 */
const GRACE_DURING_RUN_MS = 60_000;

export type Operation =
  | { kind: 'create'; target: PoolEntry; role: boolean; description: string }
  | { kind: 'update'; target: PoolEntry; viaTwin: boolean; description: string; ifMatch: boolean }
  | { kind: 'state'; target: PoolEntry; viaTwin: boolean; statecode: 0 | 1 }
  | { kind: 'role'; target: PoolEntry; roles: [RoleId | null, RoleId | null] }
  | { kind: 'assign'; target: PoolEntry; viaTwin: boolean }
  | { kind: 'grant'; target: PoolEntry; viaTwin: boolean }
  | { kind: 'revoke'; target: PoolEntry; viaTwin: boolean }
  | { kind: 'delete'; target: PoolEntry; viaTwin: boolean; ifMatch: boolean }
  | { kind: 'cascade'; record: string }
  | { kind: 'read'; target: PoolEntry; viaTwin: boolean }
  | { kind: 'deleteRole'; role: RoleId }
  | { kind: 'createRole'; role: RoleId }
  | { kind: 'repair'; settleNow: boolean };

interface ClientPlan {
  caller: Caller;
  /** How many times a request answered 503 is sent again before the client gives up. */
  retries: number;
  operations: Operation[];
}

export interface SchedulePlan {
  seed: number;
  setup: Operation[];
  clients: ClientPlan[];
  faults: Faults;
  /** The protocol's claim grace: 0 in some schedules, so creates overtake each other's claims at once. */
  claimGraceMs: number;
}

export interface ScheduleResult {
  seed: number;
  violations: string[];
  steps: number;
  trace: string[];
  plan: SchedulePlan;
}

export interface SimulationOptions {
  /** Fault rates; default: a mix of every kind. */
  faults?: Partial<Faults>;
  maxClients?: number;
  maxOperations?: number;
}

const DEFAULT_FAULTS: Faults = { fail: 0.04, lost: 0.02, duplicate: 0.02, crashBefore: 0.01, crashAfter: 0.01 };

function planOperation(prng: Prng, allowRepair: boolean): Operation {
  const target = prng.pick(POOL);
  const viaTwin = prng.random() < 0.4;
  const roll = prng.int(allowRepair ? 25 : 24);
  if (roll < 5) return { kind: 'create', target, role: prng.random() < 0.4, description: prng.pick(['x', 'y']) };
  if (roll < 8) return { kind: 'update', target, viaTwin, description: prng.pick(['u', 'v', 'w']), ifMatch: prng.random() < 0.5 };
  if (roll < 10) return { kind: 'state', target, viaTwin, statecode: prng.random() < 0.5 ? 0 : 1 };
  if (roll < 11) return { kind: 'role', target, roles: prng.pick(ROLE_PAIRS) };
  if (roll < 12) return { kind: 'assign', target, viaTwin };
  if (roll < 14) return { kind: 'grant', target, viaTwin };
  if (roll < 16) return { kind: 'revoke', target, viaTwin };
  if (roll < 18) return { kind: 'delete', target, viaTwin, ifMatch: prng.random() < 0.3 };
  if (roll < 19) return { kind: 'cascade', record: prng.pick(RECORDS) };
  if (roll < 20) return { kind: 'deleteRole', role: prng.pick(ROLES) };
  if (roll < 21) return { kind: 'createRole', role: prng.pick(ROLES) };
  if (roll < 24) return { kind: 'read', target, viaTwin };
  return { kind: 'repair', settleNow: prng.random() < 0.5 };
}

export function planSchedule(seed: number, options: SimulationOptions = {}): SchedulePlan {
  const prng = new Prng(seed);
  // Most schedules start from connections that exist (A-B one way or the other, C-B), so the run's
  // operations meet them; a few start empty, or from a deleted one.
  const setup: Operation[] = prng.random() < 0.1 ? [] : [
    { kind: 'create', target: prng.random() < 0.7 ? POOL[0] : POOL[1], role: prng.random() < 0.4, description: 'x' },
    { kind: 'create', target: POOL[2], role: prng.random() < 0.4, description: 'x' },
    ...Array.from({ length: prng.int(3) }, () => planOperation(prng, false)),
  ];
  const clientCount = 2 + prng.int((options.maxClients ?? 4) - 1);
  const clients = Array.from({ length: clientCount }, (): ClientPlan => ({
    caller: prng.random() < 0.7 ? alice : prng.random() < 0.7 ? admin : bob,
    retries: prng.pick([0, 1, 3]),
    operations: Array.from({ length: 1 + prng.int(options.maxOperations ?? 4) }, () => planOperation(prng, true)),
  }));
  return { seed, setup, clients, faults: { ...DEFAULT_FAULTS, ...options.faults }, claimGraceMs: prng.random() < 0.5 ? 0 : CLAIM_GRACE_MS };
}

/** What a client was answered, for the history checks. */
interface Answer {
  operation: Operation;
  client: number;
  /** Scheduler step at which the request was first sent, and at which it was answered. */
  started: number;
  answered: number;
  /** The connection after the request (master orientation), for a 2xx on one connection. */
  result?: ConnectionHalf;
  ok: boolean;
  deleted?: boolean;
}

const urlOf = (target: PoolEntry, viaTwin: boolean): [string, string] =>
  viaTwin ? [target.to, reciprocalIdOf(target.id)] : [target.from, target.id];

type Domain = ReturnType<typeof createDomain>;

interface Request {
  /** Sends the request (again, on a retry: the same request, If-Match included). */
  send: () => Promise<{ result?: ConnectionHalf; deleted?: boolean }>;
  /** Its fingerprint, and the URL it names, for requests on one connection. */
  print?: string;
}

/**
 * Prepares one operation as a client would send it: an If-Match comes from a read just before, once,
 * and every retry sends the very same request.
 */
async function prepare(domain: Domain, caller: Caller, operation: Operation): Promise<Request> {
  const { connections } = domain;
  const master = (half: ConnectionHalf) => (half.ismaster ? half : reciprocalOf(half));
  switch (operation.kind) {
    case 'create': {
      const { target } = operation;
      const input = createConnectionSchema.parse({
        connectionid: target.id, record1id: target.from, record1objecttypecode: TYPES[target.from], record2id: target.to,
        record2objecttypecode: TYPES[target.to], description: operation.description, ...(operation.role && { record1roleid: ROLE }),
      });
      return { send: async () => ({ result: (await connections.create(input, caller)).half }), print: requestPrint.create(caller, input) };
    }
    case 'update':
    case 'state':
    case 'role':
    case 'assign': {
      const [record, id] = urlOf(operation.target, 'viaTwin' in operation && operation.viaTwin);
      const patch = updateConnectionSchema.parse(
        operation.kind === 'update' ? { description: operation.description }
          : operation.kind === 'state' ? { statecode: operation.statecode }
            : operation.kind === 'role' ? { record1roleid: operation.roles[0], record2roleid: operation.roles[1] }
              : { ownerid: bob.id });
      const ifMatch = operation.kind === 'update' && operation.ifMatch ? [etagOfHalf(await connections.get(record, id, caller))] : undefined;
      return {
        send: async () => ({ result: master(await connections.update(record, id, patch, caller, ifMatch)) }),
        print: requestPrint.update(caller, record, id, patch, ifMatch),
      };
    }
    case 'delete': {
      const [record, id] = urlOf(operation.target, operation.viaTwin);
      const ifMatch = operation.ifMatch ? [etagOfHalf(await connections.get(record, id, caller))] : undefined;
      return {
        send: async () => ({ result: master(await connections.delete(record, id, caller, ifMatch)), deleted: true }),
        print: requestPrint.delete(caller, record, id, ifMatch),
      };
    }
    case 'grant': {
      const [record, id] = urlOf(operation.target, operation.viaTwin);
      const input = { principalid: CAROL, principaltype: 'systemuser' as const, accessmask: 1 };
      return {
        send: async () => {
          await connections.grantAccess(record, id, caller, input);
          return {};
        },
        print: requestPrint.shares(caller, record, id, ['grant', input]),
      };
    }
    case 'revoke': {
      const [record, id] = urlOf(operation.target, operation.viaTwin);
      return { send: async () => ({ result: await connections.revokeAccess(record, id, caller, CAROL) }), print: requestPrint.shares(caller, record, id, ['revoke', CAROL]) };
    }
    case 'cascade':
      return {
        send: async () => {
          await connections.deleteAllOf(operation.record, caller);
          return {};
        },
      };
    case 'read': {
      // Reads check what other clients see meanwhile: nothing deleted comes back, no version goes back.
      const [record, id] = urlOf(operation.target, operation.viaTwin);
      return { send: async () => ({ result: master(await connections.get(record, id, caller)) }) };
    }
    case 'deleteRole':
      // Roles belong to administrators, whoever the client is.
      return {
        send: async () => {
          await domain.roles.delete(operation.role, admin);
          return {};
        },
      };
    case 'createRole':
      return {
        send: async () => {
          await createRole(domain, operation.role);
          return {};
        },
      };
    case 'repair':
      return {
        send: async () => {
          // Reservations may be settled at once, while writes that made them are still running.
          await domain.consistency.walk({ repair: true, graceMs: GRACE_DURING_RUN_MS, ...(operation.settleNow && { settleAfterMs: 0 }) });
          return {};
        },
      };
  }
}

/**
 * The roles every schedule uses: the first matches itself (a connection created with it has it on both
 * sides) and the second. Created again (with its matches, where the other role exists) after a deletion.
 */
async function createRole(domain: Domain, role: RoleId): Promise<void> {
  await domain.roles.create({ connectionroleid: role, name: role === ROLE ? 'Peer' : 'Partner', category: 5, objecttypecodes: [] }, admin);
  const matches: [RoleId, RoleId][] = role === ROLE ? [[ROLE, ROLE], [ROLE, ROLE2]] : [[ROLE2, ROLE]];
  for (const [a, b] of matches) {
    await domain.roles.addMatch(a, b, admin).catch((error: unknown) => {
      if (!(error instanceof DomainError && error.code === 'ConnectionRoleNotFound')) throw error;
    });
  }
}

/** Setup: an operation sent once, without faults. */
async function perform(domain: Domain, caller: Caller, operation: Operation): Promise<void> {
  await (await prepare(domain, caller, operation)).send();
}

const etagOfHalf = (half: ConnectionHalf): string => etagOf(half);

const describe = (error: unknown): string => (error instanceof Error ? error.stack ?? error.message : String(error));

/** The commit stamps kept on a connection's authoritative copy (raw state). */
function lastStampOn(service: SimTableService, target: PoolEntry): string | undefined {
  const authoritative = authoritativeOf({ ...dummyHalf, record1id: target.from, record2id: target.to, connectionid: target.id, relatedconnectionid: reciprocalIdOf(target.id) });
  return halfAt(readState(service), authoritative.record1id, authoritative.connectionid)?.lastop;
}

/** Whether an error is what the HTTP layer answers 503 for (a client retries those); anything else not 4xx is a 500. */
function classify(error: unknown): 'unavailable' | 'refused' | 'bug' {
  const mapped = asDomainError(error);
  if (mapped?.kind === 'unavailable') return 'unavailable';
  if (mapped instanceof DomainError) return 'refused';
  return 'bug';
}

export async function runSchedule(seed: number, options: SimulationOptions = {}): Promise<ScheduleResult> {
  const plan = planSchedule(seed, options);
  const service = new SimTableService();
  const types = buildObjectTypeRegistry('base');
  const violations: string[] = [];

  // Setup, without faults: the role, and a few connections in whatever state the setup operations leave.
  // Its own random stream: the run's must not repeat the setup's (request nonces are drawn from it).
  const quiet = new Scheduler({ seed: seed ^ 0x5e7a9, faults: { fail: 0, lost: 0, duplicate: 0, crashBefore: 0, crashAfter: 0 } });
  const quietDomain = domainOver(service, quiet, types, plan.claimGraceMs);
  await quiet.run([async () => {
    await createRole(quietDomain, ROLE);
    await createRole(quietDomain, ROLE2);
    for (const operation of plan.setup) await perform(quietDomain, alice, operation).catch((error: unknown) => {
      if (classify(error) === 'bug') throw error;
    });
  }]).then((outcomes) => expectAllOk(outcomes, 'setup', violations));

  // The run: every client at once, faults at every storage call.
  const scheduler = new Scheduler({ seed, faults: plan.faults, start: new Date(quiet.now().getTime() + 2 * GRACE_DURING_RUN_MS) });
  const domain = domainOver(service, scheduler, types, plan.claimGraceMs);
  const answers: Answer[] = [];
  const outcomes = await scheduler.run(plan.clients.map((client, index) => async () => {
    for (const operation of client.operations) {
      // Recorded when sent: a request whose client crashed may still have been applied.
      const answer: Answer = { operation, client: index, started: scheduler.steps, answered: Number.POSITIVE_INFINITY, ok: false };
      answers.push(answer);
      // What made the connection's current state before this request: an identical request sent
      // earlier (by the setup, or another client) is not this one's first attempt.
      const stampBefore = 'target' in operation ? lastStampOn(service, operation.target) : undefined;
      let request: Request;
      try {
        request = await prepare(domain, client.caller, operation);
      } catch (error) {
        if (classify(error) === 'bug') violations.push(`client ${index}: reading before ${operation.kind} failed with a 500: ${describe(error)}`);
        answer.answered = scheduler.steps;
        continue;
      }
      for (let attempt = 0; ; attempt++) {
        try {
          const { result, deleted } = await request.send();
          Object.assign(answer, { answered: scheduler.steps, ok: true, ...(result && { result }), ...(deleted && { deleted }) });
          // A 2xx means every copy shows the change, now: checked at the very step it is answered.
          if (operation.kind !== 'read') violations.push(...checkAnswered(service, answer));
          if (operation.kind === 'deleteRole') violations.push(...checkRoleUnused(service, operation.role, 'deleteRole answered'));
          break;
        } catch (error) {
          const kind = classify(error);
          if (kind === 'bug') {
            violations.push(`client ${index}: ${operation.kind} failed with a 500: ${describe(error)}`);
            return;
          }
          // A retry whose first attempt was applied is answered as that attempt would have been, never
          // with a refusal: the authoritative copy's last request is this one only if it was applied.
          if (kind === 'refused' && attempt > 0 && request.print && 'target' in operation && lastStampOn(service, operation.target) !== stampBefore
            && latestRequest(lastStampOn(service, operation.target) ?? '') === request.print) {
            violations.push(`client ${index}: ${operation.kind} retried after a 503 was applied, yet answered ${(error as DomainError).code}`);
          }
          if (kind === 'refused' || attempt >= client.retries) {
            answer.answered = scheduler.steps;
            break;
          }
        }
      }
    }
  }));
  for (const [index, outcome] of outcomes.entries()) {
    if (outcome.kind === 'error') violations.push(`client ${index} threw: ${String(outcome.error)}`);
  }

  // Quiescence: the repair job, without faults, with the grace period over, then the checker.
  const after = new Scheduler({ seed: seed + 1, faults: { fail: 0, lost: 0, duplicate: 0, crashBefore: 0, crashAfter: 0 }, start: new Date(scheduler.now().getTime() + 1) });
  const repairDomain = domainOver(service, after, types, plan.claimGraceMs);
  await after.run([async () => {
    // The job runs every 15 minutes: what one pass writes (tombstones), a later one purges.
    for (let pass = 0; ; pass++) {
      const repaired = await repairDomain.consistency.walk({ repair: true, graceMs: 0 });
      if (repaired.failed > 0) violations.push(`repair: ${repaired.failed} row(s) failed`);
      if (repaired.repaired + repaired.purged === 0) break;
      if (pass === 3) {
        violations.push(`repair: still repairing after ${pass + 1} passes`);
        break;
      }
    }
    const checked = await repairDomain.consistency.walk({ repair: false, graceMs: 0 });
    for (const violation of checked.violations) violations.push(`checker after repair: ${violation.kind} ${violation.partitionKey}/${violation.rowKey} ${violation.detail}`);
  }]).then((done) => expectAllOk(done, 'repair', violations));

  violations.push(...checkTables(service), ...checkHistory(service, answers));
  return { seed, violations, steps: scheduler.steps, trace: [...scheduler.trace], plan };
}

function domainOver(service: SimTableService, scheduler: Scheduler, types: ReturnType<typeof buildObjectTypeRegistry>, claimGraceMs: number): Domain {
  const table = scheduler.tables(service);
  return createDomain(
    { connections: table(TABLES.connections), roles: table(TABLES.roles), roleIndex: table(TABLES.roleIndex) },
    types,
    // The repair job's log of rows it could not check (storage failed) is expected noise here.
    { clock: () => scheduler.now(), protocol: { sleep: (ms) => scheduler.sleep(ms), random: () => scheduler.random(), claimGraceMs }, log: process.env.SIM_LOG ? (message) => console.log(message) : () => undefined },
  );
}

function expectAllOk(outcomes: Outcome[], phase: string, violations: string[]): void {
  for (const outcome of outcomes) {
    if (outcome.kind === 'error') violations.push(`${phase} failed: ${outcome.error instanceof Error ? outcome.error.stack ?? outcome.error.message : String(outcome.error)}`);
    if (outcome.kind === 'crashed') violations.push(`${phase} crashed without faults`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Invariants, read from the raw tables.

interface RawState {
  audit: Map<string, { partitionKey: string; rowKey: string; versionnumber: number }>; // "<partition>/<rowKey>"
  claims: Map<string, { record1id: string; connectionid: string }>; // claim partition
  halves: Map<string, StoredCopy>; // "<partition>/<rowKey>"
  guards: Map<string, { partitionKey: string; rowKey: string; connectionid: string }>;
  entries: Map<string, StoredCopy>; // "<role>/<rowKey>"
}

function readState(service: SimTableService): RawState {
  const halves = new Map<string, StoredCopy>();
  const guards = new Map<string, { partitionKey: string; rowKey: string; connectionid: string }>();
  const claims = new Map<string, { record1id: string; connectionid: string }>();
  const audit = new Map<string, { partitionKey: string; rowKey: string; versionnumber: number }>();
  for (const stored of service.dump(TABLES.connections)) {
    const { partitionKey, rowKey } = stored.entity;
    if (rowKey.startsWith('h_')) audit.set(`${partitionKey}/${rowKey}`, { partitionKey, rowKey, versionnumber: Number(stored.entity.versionnumber) });
    else if (rowKey === 'claim') claims.set(partitionKey, { record1id: String(stored.entity.record1id), connectionid: String(stored.entity.connectionid) });
    else if (isGuardRowKey(rowKey)) guards.set(`${partitionKey}/${rowKey}`, { partitionKey, rowKey, connectionid: String(stored.entity.connectionid) });
    else if (rowKey.startsWith('c_')) halves.set(`${partitionKey}/${rowKey}`, fromStored(stored));
  }
  const entries = new Map<string, StoredCopy>();
  for (const stored of service.dump(TABLES.roleIndex)) if (!isReservationRowKey(stored.entity.rowKey)) entries.set(`${stored.entity.partitionKey}/${stored.entity.rowKey}`, fromStored(stored));
  return { audit, claims, halves, guards, entries };
}

const halfAt = (state: RawState, recordId: string, connectionId: string) => state.halves.get(`${recordId}/${halfRowKey(connectionId)}`);

/** A 2xx answer is visible through both halves and the index the moment it is given. */
function checkAnswered(service: SimTableService, answer: Answer): string[] {
  if (!answer.result) return [];
  const state = readState(service);
  const expected = authoritativeOf(answer.result);
  const version = expected.versionnumber;
  const problems: string[] = [];
  const where = `${answer.operation.kind} answered v${version} of ${expected.connectionid}`;
  const authoritative = halfAt(state, expected.record1id, expected.connectionid);
  const derived = halfAt(state, expected.record2id, expected.relatedconnectionid);
  for (const [name, copy, wanted] of [['authoritative', authoritative, expected], ['derived', derived, reciprocalOf(expected)]] as const) {
    // A deleted connection whose other half's slot holds another connection (an id used twice): its
    // tombstone is not needed there.
    if (answer.deleted && name === 'derived' && copy && !pairsWith(copy.half, expected)) continue;
    // A deleted connection's tombstones may be purged already (the grace period passed during the request).
    if (answer.deleted && !copy) continue;
    if (!copy) problems.push(`${where}: the ${name} half is missing`);
    else if (copy.half.versionnumber < version) problems.push(`${where}: the ${name} half is at v${copy.half.versionnumber}`);
    else if (copy.half.versionnumber === version && (!sameContent(copy.half, wanted) || copy.tombstone !== Boolean(answer.deleted))) {
      problems.push(`${where}: the ${name} half differs at the same version`);
    }
  }
  if (!answer.deleted) {
    for (const key of currentIndexKeys(expected)) {
      const half = key.startsWith('a:') ? expected : reciprocalOf(expected);
      const entry = state.entries.get(`${key.slice(2)}/${indexRowKey(half)}`);
      if (!entry || entry.half.versionnumber < version) problems.push(`${where}: index entry ${key} is ${entry ? `at v${entry.half.versionnumber}` : 'missing'}`);
    }
  }
  return problems;
}

/** No live connection has the role, and none of its index entries is live. */
function checkRoleUnused(service: SimTableService, role: RoleId, when: string): string[] {
  const state = readState(service);
  const users = [...state.halves.values()].filter((copy) => !copy.tombstone && isAuthoritative(copy.half) && (copy.half.record1roleid === role || copy.half.record2roleid === role));
  const entries = [...state.entries.entries()].filter(([key, entry]) => key.startsWith(`${role}/`) && !entry.tombstone);
  return [
    ...users.map((copy) => `${when}: ${copy.half.record1id}/${copy.half.connectionid} v${copy.half.versionnumber} still has the deleted role`),
    ...entries.map(([key]) => `${when}: index entry ${key} of the deleted role is live`),
  ];
}

/** After repair: the structural invariants, from the raw tables. */
function checkTables(service: SimTableService): string[] {
  const state = readState(service);
  const problems: string[] = [];
  // A role that is gone is used by nothing.
  for (const role of ROLES) {
    if (!service.dump(TABLES.roles).some((stored) => stored.entity.rowKey === `r_${role}`)) problems.push(...checkRoleUnused(service, role, `after repair, role ${role} gone`));
  }
  const liveAuthoritative = [...state.halves.values()].filter((copy) => isAuthoritative(copy.half) && !copy.tombstone);
  // One active connection per unordered pair of records and roles; exactly those hold guards.
  const byGuard = new Map<string, StoredCopy[]>();
  for (const copy of liveAuthoritative.filter(claimsGuard)) {
    const key = `${copy.half.record1id}/${guardRowKey(copy.half)}`;
    byGuard.set(key, [...(byGuard.get(key) ?? []), copy]);
  }
  for (const [key, holders] of byGuard) {
    if (holders.length > 1) problems.push(`duplicate active pair at ${key}: ${holders.map((copy) => copy.half.connectionid).join(', ')}`);
    const guard = state.guards.get(key);
    if (!guard || !holders.some((copy) => copy.half.connectionid === guard.connectionid)) problems.push(`guard ${key} does not name its connection`);
  }
  for (const key of state.guards.keys()) if (!byGuard.has(key)) problems.push(`guard ${key} guards nothing`);
  // Every version a live connection's incarnation reached has its audit record (the latest at least),
  // and every audit record left belongs to a live connection's slot.
  for (const copy of liveAuthoritative) {
    const prefix = `${copy.half.record1id}/h_${copy.half.connectionid}_${String(1e15 - 1 - Date.parse(copy.half.createdon)).padStart(15, '0')}_`;
    const versions = [...state.audit.entries()].filter(([key]) => key.startsWith(prefix)).map(([, row]) => row.versionnumber);
    if (!versions.includes(copy.half.versionnumber)) problems.push(`${copy.half.record1id}/${copy.half.connectionid} v${copy.half.versionnumber}: no audit record of that version`);
    if (new Set(versions).size !== versions.length) problems.push(`${copy.half.record1id}/${copy.half.connectionid}: a version audited twice`);
  }
  for (const row of state.audit.values()) {
    const id = row.rowKey.slice(2, 38);
    const holder = halfAt(state, row.partitionKey, id);
    if (!holder || holder.tombstone) problems.push(`audit record ${row.partitionKey}/${row.rowKey} of no live connection`);
  }
  // A connection id is unique across all records: no two live halves have one, and each live
  // connection's claim names its authoritative slot.
  const holders = new Map<string, string[]>();
  for (const copy of state.halves.values()) {
    if (!copy.tombstone) holders.set(copy.half.connectionid, [...(holders.get(copy.half.connectionid) ?? []), copy.half.record1id]);
  }
  for (const [id, records] of holders) if (records.length > 1) problems.push(`connection id ${id} is live in ${records.join(', ')}`);
  for (const copy of liveAuthoritative) {
    const claim = state.claims.get(claimPartitionOf(copy.half.connectionid));
    if (claim?.record1id !== copy.half.record1id || claim.connectionid !== copy.half.connectionid) {
      problems.push(`${copy.half.record1id}/${copy.half.connectionid}: its id's claim names ${claim ? `${claim.record1id}/${claim.connectionid}` : 'nothing'}`);
    }
  }
  // Every live half has its twin, mirroring it at the same version; nothing else is left.
  const expectedEntries = new Set<string>();
  for (const copy of liveAuthoritative) {
    const twin = halfAt(state, copy.half.record2id, copy.half.relatedconnectionid);
    const wanted = derivedOf(copy);
    if (!twin || twin.tombstone || twin.half.versionnumber !== copy.half.versionnumber || !sameContent(twin.half, wanted.half)) {
      problems.push(`${copy.half.connectionid} v${copy.half.versionnumber}: twin ${twin ? `v${twin.half.versionnumber}${twin.tombstone ? ' tombstone' : ''} differs` : 'missing'}`);
    }
    for (const key of currentIndexKeys(copy.half)) {
      const half = key.startsWith('a:') ? copy.half : reciprocalOf(copy.half);
      const entryKey = `${key.slice(2)}/${indexRowKey(half)}`;
      expectedEntries.add(entryKey);
      const entry = state.entries.get(entryKey);
      if (!entry || entry.tombstone || entry.half.versionnumber !== copy.half.versionnumber || !sameContent(entry.half, half)) {
        problems.push(`${copy.half.connectionid}: index entry ${entryKey} ${entry ? 'differs' : 'missing'}`);
      }
    }
  }
  for (const copy of state.halves.values()) {
    if (copy.tombstone) problems.push(`tombstone ${copy.half.record1id}/${copy.half.connectionid} left after repair with the grace period over`);
    else if (!isAuthoritative(copy.half) && !halfAt(state, copy.half.record2id, copy.half.relatedconnectionid)) problems.push(`derived half ${copy.half.connectionid} without its authority`);
  }
  for (const [key, entry] of state.entries) {
    if (!expectedEntries.has(key)) problems.push(`index entry ${key} (${entry.tombstone ? 'tombstone' : 'live'}) belongs to no live connection`);
  }
  return problems;
}

/** After repair: nothing answered 2xx is lost, nothing deleted comes back, a revoke holds. */
function checkHistory(service: SimTableService, answers: Answer[]): string[] {
  const state = readState(service);
  const problems: string[] = [];
  for (const target of POOL) {
    const authoritative = authoritativeOf({ ...dummyHalf, record1id: target.from, record2id: target.to, connectionid: target.id, relatedconnectionid: reciprocalIdOf(target.id) });
    const stored = halfAt(state, authoritative.record1id, authoritative.connectionid);
    const final = stored && stored.half.record2id === authoritative.record2id ? stored : undefined;
    // Two pool entries share a URL (c1's id between A-B and Z-B: the other half's slot in B), so a
    // request may reach another connection than the one it was planned for: an answer belongs to the
    // connection it came back with, and a request may have touched any connection its URL can reach.
    const slots = [`${target.from}/${target.id}`, `${target.to}/${reciprocalIdOf(target.id)}`];
    // One id between other records can hold the same authoritative slot (Z-B and Z-C): the records say which.
    const isThis = (half: ConnectionHalf) => {
      const other = authoritativeOf(half);
      return other.record1id === authoritative.record1id && other.connectionid === authoritative.connectionid && other.record2id === authoritative.record2id;
    };
    const touches = (answer: Answer) => {
      const { operation } = answer;
      if (operation.kind === 'cascade') return operation.record === target.from || operation.record === target.to;
      if (!('target' in operation)) return false;
      if (answer.result) return isThis(answer.result);
      if (operation.target === target) return true;
      const url = urlOf(operation.target, 'viaTwin' in operation && operation.viaTwin);
      return slots.includes(url.join('/'));
    };
    const mine = answers.filter(touches);
    const acknowledged = mine.filter((answer) => answer.ok && answer.result);
    // Acknowledged versions are never rolled back (a purged connection was deleted by someone; a new
    // incarnation of the id is later than every version of the old one).
    const stateOf = (half: ConnectionHalf) => ({ createdon: half.createdon, version: half.versionnumber });
    for (const answer of acknowledged) {
      if (final && answer.result && isLater(stateOf(answer.result), stateOf(final.half))) {
        problems.push(`${target.id}: at v${final.half.versionnumber}, below acknowledged v${answer.result.versionnumber}`);
      }
    }
    for (const answer of acknowledged) {
      const startedLater = (kinds: string[]) => mine.some((other) => other !== answer && other.started > answer.answered && kinds.includes(other.operation.kind));
      const unfinishedOrLater = (kinds: string[]) => answers.some((other) => other !== answer && touches(other) && kinds.includes(other.operation.kind) && other.answered >= answer.started)
        || startedLater(kinds);
      if (answer.deleted) {
        if (final && !startedLater(['create']) && !unfinishedOrLater(['create'])) problems.push(`${target.id}: deleted (answered) but back at v${final.half.versionnumber}`);
      } else if (!final && !unfinishedOrLater(['delete', 'cascade'])
        // A read may show a copy a delete answered 5xx (or never) left behind before the read began: that
        // copy lags until the retry, the next write or the repair job (see "What a client sees").
        && !(answer.operation.kind === 'read' && mine.some((other) => ['delete', 'cascade'].includes(other.operation.kind) && !other.ok && other.started <= answer.answered))) {
        problems.push(`${target.id}: ${answer.operation.kind} answered v${answer.result?.versionnumber} but the connection is gone and no delete was sent`);
      }
      if (answer.operation.kind === 'read') {
        // A read after a delete was answered shows the connection only if a create may have made it again.
        const recreatable = (deleted: Answer) => mine.some((other) => other.operation.kind === 'create' && other.started < answer.answered && other.answered > deleted.started);
        const deletedBefore = mine.find((other) => other.ok && other.deleted && other.answered < answer.started && !recreatable(other));
        if (deletedBefore) problems.push(`${target.id}: read (client ${answer.client}) answered v${answer.result?.versionnumber} after a delete (client ${deletedBefore.client}) was answered`);
      }
      if (answer.operation.kind === 'revoke' && final && !unfinishedOrLater(['grant'])) {
        if (final.half.shares.some((share) => share.principalid === CAROL)) problems.push(`${target.id}: revoke answered, yet carol still holds a share`);
      }
    }
  }
  return problems;
}

const dummyHalf: ConnectionHalf = {
  connectionid: '', relatedconnectionid: '', ismaster: true, record1id: '', record1objecttypecode: 1, record1roleid: null, record1name: null,
  record2id: '', record2objecttypecode: 2, record2roleid: null, record2name: null, name: null, description: null, effectivestart: null,
  effectiveend: null, statecode: 0, statuscode: 1, ownerid: '', createdon: '', createdby: '', modifiedon: '', modifiedby: '', versionnumber: 0, shares: [],
};

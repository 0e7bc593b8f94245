// Dev, simulation: the workload: the world every schedule starts from, the operations its clients send (drawn from the seed) and how they retry.
import { CLAIM_GRACE_MS } from '../../shared/protocol/claims';
import {
  type ConnectionHalf,
  createConnectionSchema,
  etagOf,
  reciprocalOf,
  updateConnectionSchema,
} from '../../shared/domain/connection';
import { requestPrint } from '../../shared/useCases/connectionCommands';
import { DomainError } from '../../shared/domain/errors';
import { reciprocalIdOf } from '../../shared/domain/ids';

import type { createDomain } from '../../shared/useCases/services';
import { asDomainError } from '../../shared/storage/storageErrors';
import type { Caller } from '../../shared/domain/caller';
import { Prng } from './prng';
import type { Faults } from './scheduler';

/**
 * What the clients of a schedule do, and nothing of what must hold (checks.ts) or of how the run is wired
 * (runner.ts): the records, roles, callers and connection ids, a schedule's plan drawn from its seed (the
 * setup, and each client's operations), and each client's loop: prepare a request as a client would, send
 * it, retry what was answered 503 with the same request, as Power Automate does, or give up. Every answer
 * is reported to the auditor at the very step it is given.
 */

/** The tables the app's domain is built over, named as in Azure. */
export const TABLES = {
  connections: 'Connections',
  roles: 'ConnectionRoles',
  roleIndex: 'ConnectionRoleIndex',
} as const;

// Three records in id order: A's partition is the authoritative one of A-B and A-C, B's of B-C.
const A = '1aaaaaaa-0000-4000-8000-000000000001';
const B = '2bbbbbbb-0000-4000-8000-000000000002';
const C = '3ccccccc-0000-4000-8000-000000000003';
// Below A: its connection to B has its authoritative half in Z's partition and its derived half in B's.
const Z = '0fffffff-0000-4000-8000-000000000000';
const RECORDS = [A, B, C];
const TYPES: Record<string, string> = { [A]: 'account', [B]: 'contact', [C]: 'contact', [Z]: 'account' };
// A role that matches itself; a connection with it has it on both sides.
const ROLE = 'e0000000-0000-4000-8000-00000000000e';
// A second role, matching the first: a connection may have them either way round, so a role can move
// from one record's side to the other.
const ROLE2 = 'e0000000-0000-4000-8000-0000000000e2';
export const ROLES = [ROLE, ROLE2] as const;
export type RoleId = (typeof ROLES)[number];
/** The roles of a `role` operation: both sides the first role, each side one of them, or none. */
const ROLE_PAIRS: [RoleId | null, RoleId | null][] = [
  [ROLE, ROLE],
  [ROLE, ROLE2],
  [ROLE2, ROLE],
  [null, null],
];

export const alice: Caller = { id: 'a11ce000-0000-4000-8000-000000000001', teams: [], isAdmin: false };
const bob: Caller = { id: 'b0b00000-0000-4000-8000-000000000002', teams: [], isAdmin: false };
const admin: Caller = { id: 'ad000000-0000-4000-8000-00000000000a', teams: [], isAdmin: true };
/** The principal grants give access to and revokes take it from. */
export const CAROL = 'ca201000-0000-4000-8000-000000000003';

/**
 * The connection ids clients use, each for one ordered pair (from: the creator's record 1, whose half is
 * the master half): c1 and c2 are the same pair both ways.
 */
export const POOL = [
  { id: 'c1c1c1c1-0000-4000-8000-000000000001', from: A, to: B },
  { id: 'c2c2c2c2-0000-4000-8000-000000000002', from: B, to: A },
  { id: 'c3c3c3c3-0000-4000-8000-000000000003', from: C, to: B },
  // c1's id again, between other records: its derived half would take the slot of c1's derived half in B.
  { id: 'c1c1c1c1-0000-4000-8000-000000000001', from: Z, to: B },
  // c1's id between records it shares no slot with, and the id of c1's derived half: both refused while c1 has them.
  { id: 'c1c1c1c1-0000-4000-8000-000000000001', from: Z, to: C },
  { id: reciprocalIdOf('c1c1c1c1-0000-4000-8000-000000000001'), from: C, to: Z },
] as const;
export type PoolEntry = (typeof POOL)[number];

/**
 * The repair job's grace period during a run: longer than any schedule lasts, so no purge races a
 * write of an older version (the protocol's assumption); the run starts this long after the setup, so
 * the setup's tombstones are purged while the run's requests create the same ids again.
 */
export const GRACE_DURING_RUN_MS = 60_000;

/**
 * One request a client sends. `viaRecord2`: through the URL of the half in the creator's record 2 (the
 * half that is not the master half; it is the derived half or the authoritative one, as the records' ids say).
 */
export type Operation =
  | { kind: 'create'; target: PoolEntry; role: boolean; description: string }
  | { kind: 'update'; target: PoolEntry; viaRecord2: boolean; description: string; ifMatch: boolean }
  | { kind: 'state'; target: PoolEntry; viaRecord2: boolean; statecode: 0 | 1 }
  | { kind: 'role'; target: PoolEntry; roles: [RoleId | null, RoleId | null] }
  | { kind: 'assign'; target: PoolEntry; viaRecord2: boolean }
  | { kind: 'grant'; target: PoolEntry; viaRecord2: boolean }
  | { kind: 'revoke'; target: PoolEntry; viaRecord2: boolean }
  | { kind: 'delete'; target: PoolEntry; viaRecord2: boolean; ifMatch: boolean }
  | { kind: 'cascade'; record: string }
  | { kind: 'read'; target: PoolEntry; viaRecord2: boolean }
  | { kind: 'deleteRole'; role: RoleId }
  | { kind: 'createRole'; role: RoleId }
  | { kind: 'repair'; settleNow: boolean };

export interface ClientPlan {
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

export interface SimulationOptions {
  /** Fault rates; default: a mix of every kind. */
  faults?: Partial<Faults>;
  maxClients?: number;
  maxOperations?: number;
}

const DEFAULT_FAULTS: Faults = { fail: 0.04, lost: 0.02, duplicate: 0.02, crashBefore: 0.01, crashAfter: 0.01 };

function planOperation(prng: Prng, allowRepair: boolean): Operation {
  const target = prng.pick(POOL);
  const viaRecord2 = prng.random() < 0.4;
  const roll = prng.int(allowRepair ? 25 : 24);
  if (roll < 5) return { kind: 'create', target, role: prng.random() < 0.4, description: prng.pick(['x', 'y']) };
  if (roll < 8)
    return {
      kind: 'update',
      target,
      viaRecord2,
      description: prng.pick(['u', 'v', 'w']),
      ifMatch: prng.random() < 0.5,
    };
  if (roll < 10) return { kind: 'state', target, viaRecord2, statecode: prng.random() < 0.5 ? 0 : 1 };
  if (roll < 11) return { kind: 'role', target, roles: prng.pick(ROLE_PAIRS) };
  if (roll < 12) return { kind: 'assign', target, viaRecord2 };
  if (roll < 14) return { kind: 'grant', target, viaRecord2 };
  if (roll < 16) return { kind: 'revoke', target, viaRecord2 };
  if (roll < 18) return { kind: 'delete', target, viaRecord2, ifMatch: prng.random() < 0.3 };
  if (roll < 19) return { kind: 'cascade', record: prng.pick(RECORDS) };
  if (roll < 20) return { kind: 'deleteRole', role: prng.pick(ROLES) };
  if (roll < 21) return { kind: 'createRole', role: prng.pick(ROLES) };
  if (roll < 24) return { kind: 'read', target, viaRecord2 };
  return { kind: 'repair', settleNow: prng.random() < 0.5 };
}

export function planSchedule(seed: number, options: SimulationOptions = {}): SchedulePlan {
  const prng = new Prng(seed);
  // Most schedules start from connections that exist (A-B one way or the other, C-B), so the run's
  // operations meet them; a few start empty, or from a deleted one.
  const setup: Operation[] =
    prng.random() < 0.1
      ? []
      : [
          {
            kind: 'create',
            target: prng.random() < 0.7 ? POOL[0] : POOL[1],
            role: prng.random() < 0.4,
            description: 'x',
          },
          { kind: 'create', target: POOL[2], role: prng.random() < 0.4, description: 'x' },
          ...Array.from({ length: prng.int(3) }, () => planOperation(prng, false)),
        ];
  const clientCount = 2 + prng.int((options.maxClients ?? 4) - 1);
  const clients = Array.from({ length: clientCount }, (): ClientPlan => ({
    caller: prng.random() < 0.7 ? alice : prng.random() < 0.7 ? admin : bob,
    retries: prng.pick([0, 1, 3]),
    operations: Array.from({ length: 1 + prng.int(options.maxOperations ?? 4) }, () => planOperation(prng, true)),
  }));
  return {
    seed,
    setup,
    clients,
    faults: { ...DEFAULT_FAULTS, ...options.faults },
    claimGraceMs: prng.random() < 0.5 ? 0 : CLAIM_GRACE_MS,
  };
}

/** What a client was answered, for the auditor's history checks. */
export interface Answer {
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

/** The record and connection id in the URL an operation names. */
export const urlOf = (target: PoolEntry, viaRecord2: boolean): [string, string] =>
  viaRecord2 ? [target.to, reciprocalIdOf(target.id)] : [target.from, target.id];

export type Domain = ReturnType<typeof createDomain>;

export interface PreparedRequest {
  /** Sends the request (again, on a retry: the same request, If-Match included). */
  send: () => Promise<{ result?: ConnectionHalf; deleted?: boolean }>;
  /** Its fingerprint, and the URL it names, for requests on one connection. */
  print?: string;
}

/**
 * Prepares one operation as a client would send it: an If-Match comes from a read just before, once,
 * and every retry sends the very same request.
 */
async function prepare(domain: Domain, caller: Caller, operation: Operation): Promise<PreparedRequest> {
  const { connections } = domain;
  const master = (half: ConnectionHalf) => (half.ismaster ? half : reciprocalOf(half));
  switch (operation.kind) {
    case 'create': {
      const { target } = operation;
      const input = createConnectionSchema.parse({
        connectionid: target.id,
        record1id: target.from,
        record1objecttypecode: TYPES[target.from],
        record2id: target.to,
        record2objecttypecode: TYPES[target.to],
        description: operation.description,
        ...(operation.role && { record1roleid: ROLE }),
      });
      return {
        send: async () => ({ result: (await connections.create(input, caller)).half }),
        print: requestPrint.create(caller, input),
      };
    }
    case 'update':
    case 'state':
    case 'role':
    case 'assign': {
      const [record, id] = urlOf(operation.target, 'viaRecord2' in operation && operation.viaRecord2);
      const patch = updateConnectionSchema.parse(
        operation.kind === 'update'
          ? { description: operation.description }
          : operation.kind === 'state'
            ? { statecode: operation.statecode }
            : operation.kind === 'role'
              ? { record1roleid: operation.roles[0], record2roleid: operation.roles[1] }
              : { ownerid: bob.id },
      );
      const ifMatch =
        operation.kind === 'update' && operation.ifMatch
          ? [etagOf(await connections.get(record, id, caller))]
          : undefined;
      return {
        send: async () => ({ result: master(await connections.update(record, id, patch, caller, ifMatch)) }),
        print: requestPrint.update(caller, record, id, patch, ifMatch),
      };
    }
    case 'delete': {
      const [record, id] = urlOf(operation.target, operation.viaRecord2);
      const ifMatch = operation.ifMatch ? [etagOf(await connections.get(record, id, caller))] : undefined;
      return {
        send: async () => ({ result: master(await connections.delete(record, id, caller, ifMatch)), deleted: true }),
        print: requestPrint.delete(caller, record, id, ifMatch),
      };
    }
    case 'grant': {
      const [record, id] = urlOf(operation.target, operation.viaRecord2);
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
      const [record, id] = urlOf(operation.target, operation.viaRecord2);
      return {
        send: async () => ({ result: await connections.revokeAccess(record, id, caller, CAROL) }),
        print: requestPrint.shares(caller, record, id, ['revoke', CAROL]),
      };
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
      const [record, id] = urlOf(operation.target, operation.viaRecord2);
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
          await domain.consistency.walk({
            repair: true,
            graceMs: GRACE_DURING_RUN_MS,
            ...(operation.settleNow && { settleAfterMs: 0 }),
          });
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
  await domain.roles.create(
    { connectionroleid: role, name: role === ROLE ? 'Peer' : 'Partner', category: 5, objecttypecodes: [] },
    admin,
  );
  const matches: [RoleId, RoleId][] =
    role === ROLE
      ? [
          [ROLE, ROLE],
          [ROLE, ROLE2],
        ]
      : [[ROLE2, ROLE]];
  for (const [a, b] of matches) {
    await domain.roles.addMatch(a, b, admin).catch((error: unknown) => {
      if (!(error instanceof DomainError && error.code === 'ConnectionRoleNotFound')) throw error;
    });
  }
}

/**
 * The setup, sent once without faults: both roles, then the plan's setup operations by alice. A refusal
 * leaves the state as it is; what the HTTP layer would answer 500 for is thrown.
 */
export async function runSetup(domain: Domain, plan: SchedulePlan): Promise<void> {
  await createRole(domain, ROLE);
  await createRole(domain, ROLE2);
  for (const operation of plan.setup) {
    const perform = async () => (await prepare(domain, alice, operation)).send();
    await perform().catch((error: unknown) => {
      if (classify(error) === 'bug') throw error;
    });
  }
}

/** Whether an error is what the HTTP layer answers 503 for (a client retries those); anything else not 4xx is a 500. */
function classify(error: unknown): 'unavailable' | 'refused' | 'bug' {
  const mapped = asDomainError(error);
  if (mapped?.kind === 'unavailable') return 'unavailable';
  if (mapped instanceof DomainError) return 'refused';
  return 'bug';
}

/** What a client tells the auditor, at the step it happens (checks.ts). */
export interface Auditor {
  /** A request is about to be prepared and sent; recorded then: a request whose client crashed may still have been applied. */
  sending(answer: Answer): void;
  /** Answered 2xx, now. */
  answered(answer: Answer): void;
  /** Refused (4xx) at a retry, after an earlier attempt was answered 503. */
  refusedRetry(answer: Answer, request: PreparedRequest, error: unknown): void;
  /** Failed with what the HTTP layer answers 500 for, reading before the request or sending it; the client stops. */
  internalError(answer: Answer, when: string, error: unknown): void;
}

/** One client's operations in turn, each retried on a 503 up to the client's retries; `steps` reads the scheduler's clock. */
export async function runClient(
  domain: Domain,
  steps: () => number,
  client: ClientPlan,
  index: number,
  auditor: Auditor,
): Promise<void> {
  for (const operation of client.operations) {
    const answer: Answer = {
      operation,
      client: index,
      started: steps(),
      answered: Number.POSITIVE_INFINITY,
      ok: false,
    };
    auditor.sending(answer);
    let request: PreparedRequest;
    try {
      request = await prepare(domain, client.caller, operation);
    } catch (error) {
      if (classify(error) === 'bug') auditor.internalError(answer, `reading before ${operation.kind}`, error);
      answer.answered = steps();
      continue;
    }
    for (let attempt = 0; ; attempt++) {
      try {
        const { result, deleted } = await request.send();
        Object.assign(answer, { answered: steps(), ok: true, ...(result && { result }), ...(deleted && { deleted }) });
        auditor.answered(answer);
        break;
      } catch (error) {
        const kind = classify(error);
        if (kind === 'bug') {
          auditor.internalError(answer, operation.kind, error);
          return;
        }
        if (kind === 'refused' && attempt > 0) auditor.refusedRetry(answer, request, error);
        if (kind === 'refused' || attempt >= client.retries) {
          answer.answered = steps();
          break;
        }
      }
    }
  }
}

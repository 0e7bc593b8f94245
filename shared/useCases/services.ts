// Use cases: the composition root (settings, table clients, stores, the protocol and the use cases, built once per process).
import type { TableClient } from '@azure/data-tables';
import { realWaiting } from '../protocol/concurrency';
import { ConnectionRoleService } from './connectionRoles';
import { ConnectionCascade } from './cascade';
import { ConnectionCommands } from './connectionCommands';
import { ConnectionQueries } from './connectionQueries';
import { ConnectionService } from './connections';
import type { RepairPort } from '../protocol/repair/repairPort';
import { ConsistencyWalker } from '../protocol/repair/walker';
import { buildObjectTypeRegistry, type ObjectTypeRegistry, parseCustomObjectTypes } from '../domain/objectTypes';
import { readSettings, type Settings, tableNames } from '../config/settings';
import { ConnectionStore } from '../storage/connectionStore';
import { RoleIndexStore } from '../storage/roleIndexStore';
import { RoleStore } from '../storage/roleStore';
import { AzureTable } from '../storage/azureTable';
import type { TablePort } from '../storage/tablePort';
import { createTableClient, ensureTable } from '../storage/tables';
import type { ProtocolOptions } from '../protocol/claims';
import { ConnectionProtocol } from '../protocol/connectionProtocol';
import { RoleReservations } from '../protocol/reservations';

/** The composition root: settings read once, clients created once per process and reused. */
export interface Services {
  settings: Settings;
  types: ObjectTypeRegistry;
  connections: ConnectionService;
  roles: ConnectionRoleService;
  /** Checks and repairs the invariant across the tables (the repair job and `npm run check`). */
  consistency: ConsistencyWalker;
  /** The table clients, for tools that walk the tables (checker, repair) and for tests. */
  tables: { connections: TableClient; roles: TableClient; roleIndex: TableClient };
  /** Resolves once the tables exist (created on first use, so a fresh account or Azurite just works). */
  ready: () => Promise<void>;
}

let services: Services | undefined;

export function createServices(settings: Settings): Services {
  const types = buildObjectTypeRegistry(
    settings.OBJECT_TYPE_PROFILE,
    parseCustomObjectTypes(settings.CUSTOM_OBJECT_TYPES),
  );
  const names = tableNames(settings);
  const clients = {
    connections: createTableClient(settings, names.connections),
    roles: createTableClient(settings, names.roles),
    roleIndex: createTableClient(settings, names.roleIndex),
  };
  let tablesReady: Promise<void> | undefined;
  const ready = (): Promise<void> =>
    (tablesReady ??= Promise.all(Object.values(clients).map(ensureTable)).then(
      () => undefined,
      (error: unknown) => {
        tablesReady = undefined; // a transient failure must not stick: the next request tries again
        throw error;
      },
    ));
  const domain = createDomain(
    {
      connections: new AzureTable(clients.connections),
      roles: new AzureTable(clients.roles),
      roleIndex: new AzureTable(clients.roleIndex),
    },
    types,
  );
  return { settings, types, ...domain, ready, tables: clients };
}

export interface DomainOptions {
  clock: () => Date;
  protocol: ProtocolOptions;
  /** Where the repair job reports rows it could not check. */
  log?: (message: string) => void;
}

const realTime: DomainOptions = { clock: () => new Date(), protocol: realWaiting };

/**
 * The domain over any three tables: Azure's in the app, the simulator's in the deterministic
 * simulation, which so runs exactly the code the app runs.
 */
export function createDomain(
  tables: { connections: TablePort; roles: TablePort; roleIndex: TablePort },
  types: ObjectTypeRegistry,
  options: DomainOptions = realTime,
): Pick<Services, 'connections' | 'roles' | 'consistency'> & { protocol: ConnectionProtocol } {
  const index = new RoleIndexStore(tables.roleIndex);
  const roleStore = new RoleStore(tables.roles);
  const store = new ConnectionStore(tables.connections);
  const reservations = new RoleReservations(index, roleStore, store);
  const roles = new ConnectionRoleService(roleStore, reservations, types, options.clock, options.protocol);
  const protocol = new ConnectionProtocol(store, index, reservations, options.protocol);
  const commands = new ConnectionCommands(protocol, roles, types, options.clock);
  const queries = new ConnectionQueries(protocol, store, index, roles, types);
  const connections = new ConnectionService(commands, queries, new ConnectionCascade(store, commands));
  const consistency = new ConsistencyWalker(
    tables,
    repairPortOf(protocol, store, index, reservations),
    () => options.clock().getTime(),
    options.log,
  );
  return { connections, roles, consistency, protocol };
}

/** What the repair walk may do, bound to the protocol and the stores it works through (and nothing else of theirs). */
function repairPortOf(
  protocol: ConnectionProtocol,
  store: ConnectionStore,
  index: RoleIndexStore,
  reservations: RoleReservations,
): RepairPort {
  return {
    propagate: (authoritative) => protocol.propagate(authoritative),
    claimId: (authoritative, id) => protocol.claimId(authoritative, id, 'ensure'),
    demoteDuplicate: (loser, now) => protocol.demoteDuplicate(loser, now),
    endDuplicateId: (intruder, now) => protocol.endDuplicateId(intruder, now),
    settleReservation: (reservation, now) => reservations.settle(reservation, now),
    clearStaleRoleMarks: (now, staleMs) => reservations.clearStaleMarks(now, staleMs),
    readHalf: (recordId, connectionId) => store.read(recordId, connectionId),
    readClaim: (connectionId) => store.readClaim(connectionId),
    guardHolderOf: (authoritative) => store.guardHolder(authoritative),
    claimGuard: (authoritative) => store.claimGuard(authoritative),
    putDerived: (copy, known) => protocol.putDerived(copy, known),
    rewriteAuthoritative: (copy, etag) => store.rewrite(copy, etag),
    deleteConnectionRow: (partitionKey, rowKey, etag) => store.deleteIfUnchanged(partitionKey, rowKey, etag),
    purgeAudit: (authoritative) => store.purgeAudit(authoritative),
    purgeHalf: (tombstone) => store.purge(tombstone),
    readEntry: (roleId, half) => index.read(roleId, half),
    deleteIndexRow: (roleId, rowKey, etag) => index.deleteIfUnchanged(roleId, rowKey, etag),
  };
}

export function getServices(): Services {
  services ??= createServices(readSettings());
  return services;
}

/** Forgets the cached services, so the next request reads the settings again (tests switch tables). */
export function resetServices(): void {
  services = undefined;
}

import type { TableClient } from '@azure/data-tables';
import { ConnectionRoleService } from './connectionRoles';
import { ConnectionService } from './connections';
import { ConsistencyWalker } from './consistency';
import { buildObjectTypeRegistry, type ObjectTypeRegistry, parseCustomObjectTypes } from './objectTypes';
import { readSettings, type Settings, tableNames } from './settings';
import { ConnectionStore } from './storage/connectionStore';
import { RoleIndexStore } from './storage/roleIndexStore';
import { RoleStore } from './storage/roleStore';
import { createTableClient, ensureTable } from './storage/tables';

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
  const types = buildObjectTypeRegistry(settings.OBJECT_TYPE_PROFILE, parseCustomObjectTypes(settings.CUSTOM_OBJECT_TYPES));
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
  const index = new RoleIndexStore(clients.roleIndex);
  const roles = new ConnectionRoleService(new RoleStore(clients.roles), index, types);
  const store = new ConnectionStore(clients.connections);
  const connections = new ConnectionService(store, index, roles, types);
  const consistency = new ConsistencyWalker(clients, store, index);
  return { settings, types, connections, roles, consistency, ready, tables: clients };
}

export function getServices(): Services {
  services ??= createServices(readSettings());
  return services;
}

/** Forgets the cached services, so the next request reads the settings again (tests switch tables). */
export function resetServices(): void {
  services = undefined;
}

import { ConnectionService } from './connections';
import { buildObjectTypeRegistry, type ObjectTypeRegistry, parseCustomObjectTypes } from './objectTypes';
import { readSettings, type Settings } from './settings';
import { ConnectionStore } from './storage/connectionStore';
import { createTableClient, ensureTable } from './storage/tables';

/** The composition root: settings read once, clients created once per process and reused. */
export interface Services {
  settings: Settings;
  types: ObjectTypeRegistry;
  connections: ConnectionService;
  /** Resolves once the tables exist (created on first use, so a fresh account or Azurite just works). */
  ready: () => Promise<void>;
}

let services: Services | undefined;

export function createServices(settings: Settings): Services {
  const types = buildObjectTypeRegistry(settings.OBJECT_TYPE_PROFILE, parseCustomObjectTypes(settings.CUSTOM_OBJECT_TYPES));
  const client = createTableClient(settings, settings.CONNECTIONS_TABLE_NAME);
  let tableReady: Promise<void> | undefined;
  const ready = (): Promise<void> =>
    (tableReady ??= ensureTable(client).catch((error: unknown) => {
      tableReady = undefined; // a transient failure must not stick: the next request tries again
      throw error;
    }));
  return { settings, types, connections: new ConnectionService(new ConnectionStore(client), types), ready };
}

export function getServices(): Services {
  services ??= createServices(readSettings());
  return services;
}

/** Forgets the cached services, so the next request reads the settings again (tests switch tables). */
export function resetServices(): void {
  services = undefined;
}

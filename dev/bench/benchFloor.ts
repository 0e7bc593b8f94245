import { TableClient, type TableEntity, type TransactionAction } from '@azure/data-tables';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { exitWithParent } from '../local/parent';

/**
 * The floor of `npm run bench`: an empty HTTP handler in a process of its own that, per request, makes
 * exactly the storage requests the app's operation makes, through the raw `@azure/data-tables` SDK
 * (default options), with no validation, no domain logic and no Functions programming model. What the
 * app costs above it is the app's own cost.
 *
 * It knows nothing of the app: the bench hands it the table names, entity templates (the property bags
 * of entities the app itself stored, so every write has the app's size and shape) and the keys, partly
 * in each URL. Reads (get, list, role query, a create's fresh role reads) go to the app's own tables,
 * so they return the very entities the app reads; writes go to tables of the floor's own.
 *
 *   GET    /ping                                   no storage: the HTTP round trip alone
 *   POST   /create                                 claim, then half + audit + guard batch, then other half (3)
 *   POST   /create-role                            claim || (2 reservations, then 2 role reads), batch,
 *                                                  other half, then 2 index entries side by side (9)
 *   GET    /get/<pk>/<rk>                          one point read (1)
 *   GET    /list/<pk>                              one partition range query (1)
 *   GET    /role/<pk>                              one partition range query of the role index (1)
 *   PATCH  /change/<pk1>/<rk1>/<pk2>/<rk2>         read, read, batch replace (If-Match) + audit, replace (If-Match) (4)
 *   DELETE /delete/<pk1>/<rk1>/<pk2>/<rk2>/<guard> read, read, batch replace + audit + guard delete, replace (4)
 *
 * `node dist/dev/bench/benchFloor.js --port N` with BENCH_FLOOR (a FloorConfig as JSON) in the environment;
 * prints FLOOR_READY_LINE once it listens.
 */
export const FLOOR_READY_LINE = 'bench-floor ready';

export type Properties = Record<string, string | number | boolean>;

export interface FloorConfig {
  connectionString: string;
  /** The app's tables (read) and the floor's own (written). */
  tables: { connections: string; roles: string; roleIndex: string; floorConnections: string; floorRoleIndex: string };
  /** Property bags (no keys) of entities as the app stores them. */
  templates: {
    half: Properties;
    roleHalf: Properties;
    guard: Properties;
    claim: Properties;
    reservation: Properties;
    entry: Properties;
    audit: Properties;
  };
  /** The two roles of a create with a role: their rows in the roles table, and their ids (index partitions). */
  roles: { partitionKey: string; rowKeys: [string, string]; ids: [string, string] };
  /** The filters the app sends for a list by record and a role query, with {pk} for the partition. */
  filters: { list: string; role: string };
  pageSize: number;
}

function body(request: IncomingMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    request
      .on('data', () => undefined)
      .once('end', () => resolve())
      .once('error', reject);
  });
}

function reply(response: ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

export function floorHandler(
  config: FloorConfig,
): (request: IncomingMessage, response: ServerResponse) => Promise<void> {
  const client = (table: string) =>
    TableClient.fromConnectionString(config.connectionString, table, { allowInsecureConnection: true });
  const connections = client(config.tables.connections);
  const roles = client(config.tables.roles);
  const roleIndex = client(config.tables.roleIndex);
  const floorConnections = client(config.tables.floorConnections);
  const floorRoleIndex = client(config.tables.floorRoleIndex);
  const { templates } = config;
  const entity = (partitionKey: string, rowKey: string, properties: Properties): TableEntity<Properties> => ({
    partitionKey,
    rowKey,
    ...properties,
  });
  const firstPage = async (table: TableClient, filter: string) => {
    const page = await table.listEntities({ queryOptions: { filter } }).byPage({ maxPageSize: config.pageSize }).next();
    return page.done ? [] : page.value;
  };

  const create = async (withRoles: boolean) => {
    const [record1, record2, id, related] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    const half = withRoles ? templates.roleHalf : templates.half;
    const reserveAndRead = async () => {
      await Promise.all(
        config.roles.ids.map((role) =>
          floorRoleIndex.upsertEntity(entity(role, `r_${record1}_${id}`, templates.reservation), 'Replace'),
        ),
      );
      await Promise.all(config.roles.rowKeys.map((rowKey) => roles.getEntity(config.roles.partitionKey, rowKey)));
    };
    await Promise.all([
      floorConnections.createEntity(entity(`i_${id}`, 'claim', templates.claim)),
      ...(withRoles ? [reserveAndRead()] : []),
    ]);
    const written = entity(record1, `c_${id}`, half);
    await floorConnections.submitTransaction([
      ['create', written],
      ['create', entity(record1, `h_${id}_${randomUUID()}`, templates.audit)],
      ['create', entity(record1, `u_${record2}_-_-`, templates.guard)],
    ]);
    await floorConnections.createEntity(entity(record2, `c_${related}`, half));
    if (withRoles) {
      await Promise.all(
        config.roles.ids.map((role) =>
          floorRoleIndex.createEntity(entity(role, `0000000002_${record1}_${id}`, templates.entry)),
        ),
      );
    }
    return written;
  };

  const change = async (keys: string[], deleting: boolean) => {
    const [pk1 = '', rk1 = '', pk2 = '', rk2 = '', guard = ''] = keys;
    const first = await floorConnections.getEntity(pk1, rk1);
    const second = await floorConnections.getEntity(pk2, rk2);
    const next = entity(pk1, rk1, { ...templates.half, description: `at ${Date.now()}`, tombstone: deleting });
    const actions: TransactionAction[] = [
      ['update', next, 'Replace', { etag: first.etag }],
      ['create', entity(pk1, `h_${randomUUID()}`, templates.audit)],
    ];
    if (deleting) actions.push(['delete', { partitionKey: pk1, rowKey: guard }]);
    await floorConnections.submitTransaction(actions);
    await floorConnections.updateEntity(entity(pk2, rk2, { ...templates.half, tombstone: deleting }), 'Replace', {
      etag: second.etag,
    });
    return next;
  };

  return async (request, response) => {
    await body(request);
    const [route = '', ...keys] =
      (request.url ?? '/').split('?')[0]?.split('/').filter(Boolean).map(decodeURIComponent) ?? [];
    const [key = ''] = keys;
    switch (`${request.method} ${route}`) {
      case 'GET ping':
        return reply(response, 200, { status: 'ok' });
      case 'POST create':
        return reply(response, 201, await create(false));
      case 'POST create-role':
        return reply(response, 201, await create(true));
      case 'GET get':
        return reply(response, 200, await connections.getEntity(key, keys[1] ?? ''));
      case 'GET list':
        return reply(response, 200, { value: await firstPage(connections, config.filters.list.replace('{pk}', key)) });
      case 'GET role':
        return reply(response, 200, { value: await firstPage(roleIndex, config.filters.role.replace('{pk}', key)) });
      case 'PATCH change':
        return reply(response, 200, await change(keys, false));
      case 'DELETE delete':
        return reply(response, 200, await change(keys, true));
      default:
        return reply(response, 404, { error: `no floor route ${request.method} ${request.url}` });
    }
  };
}

if (require.main === module) {
  const index = process.argv.indexOf('--port');
  const port = Number(process.argv[index + 1]);
  const config = JSON.parse(process.env.BENCH_FLOOR ?? '{}') as FloorConfig;
  const handle = floorHandler(config);
  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      const status =
        typeof error === 'object' && error !== null && 'statusCode' in error ? Number(error.statusCode) : 500;
      if (!response.headersSent) reply(response, Number.isInteger(status) ? status : 500, { error: String(error) });
      else response.destroy();
    });
  });
  server.listen(port, '127.0.0.1', () => process.stdout.write(`${FLOOR_READY_LINE} ${port}\n`));
  process.once('SIGTERM', () => server.close(() => process.exit(0)));
  exitWithParent(Number(process.env.APP_PARENT_PID)); // as the app process does
}

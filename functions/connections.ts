import { createConnectionSchema, etagOf, toView, updateConnectionSchema } from '../shared/connection';
import { json, listResponse, noContent, parseBody, parseParams, parseQuery, registerRoute } from '../shared/http/route';
import { connectionParams, listQuerySchema, parseIfMatch, recordParams, roleQuerySchema } from '../shared/http/schemas';

const connectionUrl = (requestUrl: string, recordId: string, connectionId: string): string =>
  new URL(`/api/records/${recordId}/connections/${connectionId}`, requestUrl).toString();

registerRoute({
  name: 'createConnection',
  methods: ['POST'],
  route: 'connections',
  handler: async ({ request, services, caller }) => {
    const input = await parseBody(request, createConnectionSchema);
    const { half, created } = await services.connections.create(input, caller);
    return json(created ? 201 : 200, toView(half, services.types), {
      location: connectionUrl(request.url, half.record1id, half.connectionid),
      etag: etagOf(half),
    });
  },
});

registerRoute({
  name: 'listConnectionsByRole',
  methods: ['GET'],
  route: 'connections',
  handler: async ({ request, services, caller }) => {
    const { top, skiptoken, count, ...query } = parseQuery(request, roleQuerySchema);
    const page = await services.connections.listByRole(query, caller, { top, ...(skiptoken && { skiptoken }), ...(count && { count }) });
    return listResponse(request, page.items.map((half) => toView(half, services.types)), page);
  },
});

registerRoute({
  name: 'listConnections',
  methods: ['GET'],
  route: 'records/{recordid}/connections',
  handler: async ({ request, services, caller }) => {
    const { recordid } = parseParams(request, recordParams);
    const { top, skiptoken, count, ...filters } = parseQuery(request, listQuerySchema);
    const page = await services.connections.list({ recordId: recordid, ...filters }, caller, { top, ...(skiptoken && { skiptoken }), ...(count && { count }) });
    return listResponse(request, page.items.map((half) => toView(half, services.types)), page);
  },
});

registerRoute({
  name: 'deleteRecordConnections',
  methods: ['DELETE'],
  route: 'records/{recordid}/connections',
  handler: async ({ request, services, caller }) => {
    const { recordid } = parseParams(request, recordParams);
    const deleted = await services.connections.deleteAllOf(recordid, caller);
    return json(200, { recordid, deleted });
  },
});

registerRoute({
  name: 'listRecordRoles',
  methods: ['GET'],
  route: 'records/{recordid}/roles',
  handler: async ({ request, services, caller }) => {
    const { recordid } = parseParams(request, recordParams);
    const roles = await services.connections.rolesOf(recordid, caller);
    return json(200, { recordid, count: roles.length, value: roles });
  },
});

registerRoute({
  name: 'getConnection',
  methods: ['GET'],
  route: 'records/{recordid}/connections/{connectionid}',
  handler: async ({ request, services, caller }) => {
    const { recordid, connectionid } = parseParams(request, connectionParams);
    const half = await services.connections.get(recordid, connectionid, caller);
    return json(200, toView(half, services.types), { etag: etagOf(half) });
  },
});

registerRoute({
  name: 'updateConnection',
  methods: ['PATCH'],
  route: 'records/{recordid}/connections/{connectionid}',
  handler: async ({ request, services, caller }) => {
    const { recordid, connectionid } = parseParams(request, connectionParams);
    const patch = await parseBody(request, updateConnectionSchema);
    const ifMatch = parseIfMatch(request.headers.get('if-match'));
    const half = await services.connections.update(recordid, connectionid, patch, caller, ifMatch);
    return json(200, toView(half, services.types), { etag: etagOf(half) });
  },
});

registerRoute({
  name: 'deleteConnection',
  methods: ['DELETE'],
  route: 'records/{recordid}/connections/{connectionid}',
  handler: async ({ request, services, caller }) => {
    const { recordid, connectionid } = parseParams(request, connectionParams);
    await services.connections.delete(recordid, connectionid, caller, parseIfMatch(request.headers.get('if-match')));
    return noContent();
  },
});

import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { createConnectionSchema, etagOf, toView, updateConnectionSchema } from '../shared/domain/connection';
import { json, listResponse, noContent } from '../shared/api/route';
import { registerRoute } from '../shared/hosts/azureFunctions/register';
import type { ObjectTypeRegistry } from '../shared/domain/objectTypes';
import type { ListOptions, ListResult } from '../shared/useCases/connectionQueries';
import {
  auditListSchema,
  auditQuerySchema,
  connectionListSchema,
  connectionParams,
  connectionViewSchema,
  deletedSchema,
  etagHeader,
  listQuerySchema,
  parseIfMatch,
  recordParams,
  recordRolesSchema,
  roleQuerySchema,
} from '../shared/api/schemas';

const listOptions = (top: number, skiptoken: string | undefined, count: boolean | undefined): ListOptions => ({
  top,
  ...(skiptoken && { skiptoken }),
  ...(count && { count }),
});

const connectionPage = (request: HttpRequest, page: ListResult, types: ObjectTypeRegistry): HttpResponseInit =>
  listResponse(
    request,
    page.items.map((half) => toView(half, types)),
    page,
  );

const connectionUrl = (requestUrl: string, recordId: string, connectionId: string): string =>
  new URL(`/api/records/${recordId}/connections/${connectionId}`, requestUrl).toString();

registerRoute({
  name: 'createConnection',
  operationId: 'CreateConnection',
  summary: 'Create a connection',
  description: 'Connects two records, writing the connection and its reciprocal so that both records list it.',
  method: 'POST',
  route: 'connections',
  body: createConnectionSchema,
  response: {
    status: 201,
    description: 'The connection as record 1 sees it.',
    alternatives: { 200: 'The same request was already done: the connection it made, unchanged.' },
    schema: connectionViewSchema,
    headers: { location: "The connection's URL.", ...etagHeader },
  },
  handler: async ({ request, services, caller, body }) => {
    const { half, created } = await services.connections.create(body, caller);
    return json(created ? 201 : 200, toView(half, services.types), {
      location: connectionUrl(request.url, half.record1id, half.connectionid),
      etag: etagOf(half),
    });
  },
});

registerRoute({
  name: 'listConnectionsByRole',
  operationId: 'ListConnectionsByRole',
  summary: 'List connections by role',
  description:
    'Lists the connections in which a record plays the given role, across all records, optionally of one record type.',
  method: 'GET',
  route: 'connections',
  query: roleQuerySchema,
  pageable: true,
  response: { status: 200, description: 'A page of connections.', schema: connectionListSchema },
  handler: async ({ request, services, caller, query: { top, skiptoken, count, ...query } }) => {
    const page = await services.connections.listByRole(query, caller, listOptions(top, skiptoken, count));
    return connectionPage(request, page, services.types);
  },
});

registerRoute({
  name: 'listConnections',
  operationId: 'ListConnections',
  summary: 'List the connections of a record',
  description:
    'Lists every connection a record takes part in, on either side, filtered by the other record, roles, status or date.',
  method: 'GET',
  route: 'records/{recordid}/connections',
  params: recordParams,
  query: listQuerySchema,
  pageable: true,
  response: { status: 200, description: 'A page of connections.', schema: connectionListSchema },
  handler: async ({
    request,
    services,
    caller,
    params: { recordid },
    query: { top, skiptoken, count, ...filters },
  }) => {
    const page = await services.connections.list(
      { recordId: recordid, ...filters },
      caller,
      listOptions(top, skiptoken, count),
    );
    return connectionPage(request, page, services.types);
  },
});

registerRoute({
  name: 'deleteRecordConnections',
  operationId: 'DeleteRecordConnections',
  summary: 'Delete all connections of a record',
  description:
    'Deletes every connection of a record, both halves of each, as when the record itself is deleted; for administrators.',
  method: 'DELETE',
  route: 'records/{recordid}/connections',
  params: recordParams,
  visibility: 'advanced',
  response: { status: 200, description: 'How many connections were deleted.', schema: deletedSchema },
  handler: async ({ services, caller, params: { recordid } }) => {
    const deleted = await services.connections.deleteAllOf(recordid, caller);
    return json(200, { recordid, deleted });
  },
});

registerRoute({
  name: 'listRecordRoles',
  operationId: 'ListRecordRoles',
  summary: 'List the roles of a record',
  description: 'Lists the distinct roles a record plays in its connections, each with the number of connections.',
  method: 'GET',
  route: 'records/{recordid}/roles',
  params: recordParams,
  response: { status: 200, description: 'The roles the record plays.', schema: recordRolesSchema },
  handler: async ({ services, caller, params: { recordid } }) => {
    const roles = await services.connections.recordRoles(recordid, caller);
    return json(200, { recordid, count: roles.length, value: roles });
  },
});

registerRoute({
  name: 'getConnection',
  operationId: 'GetConnection',
  summary: 'Get a connection',
  description: 'Returns one connection as the given record sees it, with the ETag to use for changes.',
  method: 'GET',
  route: 'records/{recordid}/connections/{connectionid}',
  params: connectionParams,
  response: { status: 200, description: 'The connection.', schema: connectionViewSchema, headers: etagHeader },
  handler: async ({ services, caller, params: { recordid, connectionid } }) => {
    const half = await services.connections.get(recordid, connectionid, caller);
    return json(200, toView(half, services.types), { etag: etagOf(half) });
  },
});

registerRoute({
  name: 'getConnectionAudit',
  operationId: 'GetConnectionAudit',
  summary: 'Get the audit history of a connection',
  description:
    "Lists the changes of a connection, newest first: who made each, when, what it did, and each field's old and new value.",
  method: 'GET',
  route: 'records/{recordid}/connections/{connectionid}/audit',
  params: connectionParams,
  query: auditQuerySchema,
  pageable: true,
  response: { status: 200, description: "A page of the connection's changes.", schema: auditListSchema },
  handler: async ({ request, services, caller, params: { recordid, connectionid }, query: { top, skiptoken } }) => {
    const page = await services.connections.history(recordid, connectionid, caller, { top, skiptoken });
    return listResponse(request, page.items, page);
  },
});

registerRoute({
  name: 'updateConnection',
  operationId: 'UpdateConnection',
  summary: 'Update a connection',
  description: 'Changes the description, dates, roles, owner or status of a connection on both of its halves.',
  method: 'PATCH',
  route: 'records/{recordid}/connections/{connectionid}',
  params: connectionParams,
  body: updateConnectionSchema,
  ifMatch: true,
  response: { status: 200, description: 'The changed connection.', schema: connectionViewSchema, headers: etagHeader },
  handler: async ({ request, services, caller, params: { recordid, connectionid }, body }) => {
    const half = await services.connections.update(
      recordid,
      connectionid,
      body,
      caller,
      parseIfMatch(request.headers.get('if-match')),
    );
    return json(200, toView(half, services.types), { etag: etagOf(half) });
  },
});

registerRoute({
  name: 'deleteConnection',
  operationId: 'DeleteConnection',
  summary: 'Delete a connection',
  description: 'Deletes a connection, both of its halves, from whichever record it is addressed.',
  method: 'DELETE',
  route: 'records/{recordid}/connections/{connectionid}',
  params: connectionParams,
  ifMatch: true,
  response: { status: 204, description: 'Deleted.' },
  handler: async ({ request, services, caller, params: { recordid, connectionid } }) => {
    await services.connections.delete(recordid, connectionid, caller, parseIfMatch(request.headers.get('if-match')));
    return noContent();
  },
});

import { json, listResponse, noContent } from '../shared/api/route';
import { registerRoute } from '../shared/hosts/azureFunctions/register';
import {
  matchingRolesSchema,
  matchParams,
  parseIfMatch,
  roleListQuerySchema,
  roleListSchema,
  roleParams,
  roleViewSchema,
} from '../shared/api/schemas';
import { createRoleSchema, roleEtagOf, toRoleView, updateRoleSchema } from '../shared/domain/roles';

const roleUrl = (requestUrl: string, roleId: string): string =>
  new URL(`/api/connectionroles/${roleId}`, requestUrl).toString();
const roleEtag = { etag: "The role's version, for If-Match." };

registerRoute({
  name: 'createConnectionRole',
  operationId: 'CreateConnectionRole',
  summary: 'Create a connection role',
  description: 'Creates a role records can play in connections, such as Doctor or Vendor; for administrators.',
  method: 'POST',
  route: 'connectionroles',
  body: createRoleSchema,
  visibility: 'advanced',
  response: {
    status: 201,
    description: 'The role.',
    alternatives: { 200: 'The same request was already done: the role it made, unchanged.' },
    schema: roleViewSchema,
    headers: { location: "The role's URL.", ...roleEtag },
  },
  handler: async ({ request, services, caller, body }) => {
    const { role, created } = await services.roles.create(body, caller);
    return json(created ? 201 : 200, toRoleView(role, services.types), {
      location: roleUrl(request.url, role.connectionroleid),
      etag: roleEtagOf(role),
    });
  },
});

registerRoute({
  name: 'listConnectionRoles',
  operationId: 'ListConnectionRoles',
  summary: 'List connection roles',
  description: 'Lists the connection roles, optionally only those a record type can take toward another type.',
  method: 'GET',
  route: 'connectionroles',
  query: roleListQuerySchema,
  pageable: true,
  response: { status: 200, description: 'A page of roles.', schema: roleListSchema },
  handler: async ({ request, services, query: { top, skiptoken, count, ...query } }) => {
    const page = await services.roles.list(query, top, skiptoken);
    return listResponse(
      request,
      page.items.map((role) => toRoleView(role, services.types)),
      {
        ...(page.skiptoken && { skiptoken: page.skiptoken }),
        ...(count && { count: page.count }),
      },
    );
  },
});

registerRoute({
  name: 'getConnectionRole',
  operationId: 'GetConnectionRole',
  summary: 'Get a connection role',
  description: 'Returns one connection role with the ETag to use for changes.',
  method: 'GET',
  route: 'connectionroles/{connectionroleid}',
  params: roleParams,
  response: { status: 200, description: 'The role.', schema: roleViewSchema, headers: roleEtag },
  handler: async ({ services, params: { connectionroleid } }) => {
    const role = await services.roles.get(connectionroleid);
    return json(200, toRoleView(role, services.types), { etag: roleEtagOf(role) });
  },
});

registerRoute({
  name: 'updateConnectionRole',
  operationId: 'UpdateConnectionRole',
  summary: 'Update a connection role',
  description: "Changes a role's name, category, description, record types or status; for administrators.",
  method: 'PATCH',
  route: 'connectionroles/{connectionroleid}',
  params: roleParams,
  body: updateRoleSchema,
  ifMatch: true,
  visibility: 'advanced',
  response: { status: 200, description: 'The changed role.', schema: roleViewSchema, headers: roleEtag },
  handler: async ({ request, services, caller, params: { connectionroleid }, body }) => {
    const role = await services.roles.update(
      connectionroleid,
      body,
      caller,
      parseIfMatch(request.headers.get('if-match')),
    );
    return json(200, toRoleView(role, services.types), { etag: roleEtagOf(role) });
  },
});

registerRoute({
  name: 'deleteConnectionRole',
  operationId: 'DeleteConnectionRole',
  summary: 'Delete a connection role',
  description: 'Deletes a role that no connection uses; for administrators.',
  method: 'DELETE',
  route: 'connectionroles/{connectionroleid}',
  params: roleParams,
  ifMatch: true,
  visibility: 'advanced',
  response: { status: 204, description: 'Deleted.' },
  handler: async ({ request, services, caller, params: { connectionroleid } }) => {
    await services.roles.delete(connectionroleid, caller, parseIfMatch(request.headers.get('if-match')));
    return noContent();
  },
});

registerRoute({
  name: 'listMatchingRoles',
  operationId: 'ListMatchingRoles',
  summary: 'List the matching roles of a role',
  description: 'Lists the roles that match a role, such as Patient and Nurse for Doctor.',
  method: 'GET',
  route: 'connectionroles/{connectionroleid}/matchingroles',
  params: roleParams,
  response: { status: 200, description: 'The matching roles.', schema: matchingRolesSchema },
  handler: async ({ services, params: { connectionroleid } }) => {
    const roles = await services.roles.matchingRoles(connectionroleid);
    return json(200, { value: roles.map((role) => toRoleView(role, services.types)) });
  },
});

registerRoute({
  name: 'addMatchingRole',
  operationId: 'AssociateMatchingRole',
  summary: 'Make two roles match',
  description: 'Records that two roles match each other, both ways; a role may match itself; for administrators.',
  method: 'PUT',
  route: 'connectionroles/{connectionroleid}/matchingroles/{matchingroleid}',
  params: matchParams,
  visibility: 'advanced',
  response: { status: 204, description: 'The roles match.' },
  handler: async ({ services, caller, params: { connectionroleid, matchingroleid } }) => {
    await services.roles.addMatch(connectionroleid, matchingroleid, caller);
    return noContent();
  },
});

registerRoute({
  name: 'removeMatchingRole',
  operationId: 'DisassociateMatchingRole',
  summary: 'Stop two roles matching',
  description: 'Removes the match between two roles, both ways; for administrators.',
  method: 'DELETE',
  route: 'connectionroles/{connectionroleid}/matchingroles/{matchingroleid}',
  params: matchParams,
  visibility: 'advanced',
  response: { status: 204, description: 'The roles no longer match.' },
  handler: async ({ services, caller, params: { connectionroleid, matchingroleid } }) => {
    await services.roles.removeMatch(connectionroleid, matchingroleid, caller);
    return noContent();
  },
});

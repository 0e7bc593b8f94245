import { json, listResponse, noContent, parseBody, parseParams, parseQuery, registerRoute } from '../shared/http/route';
import { matchParams, parseIfMatch, roleListQuerySchema, roleParams } from '../shared/http/schemas';
import { createRoleSchema, roleEtagOf, toRoleView, updateRoleSchema } from '../shared/roles';

const roleUrl = (requestUrl: string, roleId: string): string => new URL(`/api/connectionroles/${roleId}`, requestUrl).toString();

registerRoute({
  name: 'createConnectionRole',
  methods: ['POST'],
  route: 'connectionroles',
  handler: async ({ request, services, caller }) => {
    const input = await parseBody(request, createRoleSchema);
    const { role, created } = await services.roles.create(input, caller);
    return json(created ? 201 : 200, toRoleView(role, services.types), {
      location: roleUrl(request.url, role.connectionroleid),
      etag: roleEtagOf(role),
    });
  },
});

registerRoute({
  name: 'listConnectionRoles',
  methods: ['GET'],
  route: 'connectionroles',
  handler: async ({ request, services }) => {
    const { top, skiptoken, count, ...query } = parseQuery(request, roleListQuerySchema);
    const page = await services.roles.list(query, top, skiptoken);
    return listResponse(request, page.items.map((role) => toRoleView(role, services.types)), {
      ...(page.skiptoken && { skiptoken: page.skiptoken }),
      ...(count && { count: page.count }),
    });
  },
});

registerRoute({
  name: 'getConnectionRole',
  methods: ['GET'],
  route: 'connectionroles/{connectionroleid}',
  handler: async ({ request, services }) => {
    const { connectionroleid } = parseParams(request, roleParams);
    const role = await services.roles.get(connectionroleid);
    return json(200, toRoleView(role, services.types), { etag: roleEtagOf(role) });
  },
});

registerRoute({
  name: 'updateConnectionRole',
  methods: ['PATCH'],
  route: 'connectionroles/{connectionroleid}',
  handler: async ({ request, services, caller }) => {
    const { connectionroleid } = parseParams(request, roleParams);
    const patch = await parseBody(request, updateRoleSchema);
    const role = await services.roles.update(connectionroleid, patch, caller, parseIfMatch(request.headers.get('if-match')));
    return json(200, toRoleView(role, services.types), { etag: roleEtagOf(role) });
  },
});

registerRoute({
  name: 'deleteConnectionRole',
  methods: ['DELETE'],
  route: 'connectionroles/{connectionroleid}',
  handler: async ({ request, services, caller }) => {
    const { connectionroleid } = parseParams(request, roleParams);
    await services.roles.delete(connectionroleid, caller, parseIfMatch(request.headers.get('if-match')));
    return noContent();
  },
});

registerRoute({
  name: 'listMatchingRoles',
  methods: ['GET'],
  route: 'connectionroles/{connectionroleid}/matchingroles',
  handler: async ({ request, services }) => {
    const { connectionroleid } = parseParams(request, roleParams);
    const roles = await services.roles.matchingRoles(connectionroleid);
    return json(200, { value: roles.map((role) => toRoleView(role, services.types)) });
  },
});

registerRoute({
  name: 'addMatchingRole',
  methods: ['PUT'],
  route: 'connectionroles/{connectionroleid}/matchingroles/{matchingroleid}',
  handler: async ({ request, services, caller }) => {
    const { connectionroleid, matchingroleid } = parseParams(request, matchParams);
    await services.roles.addMatch(connectionroleid, matchingroleid, caller);
    return noContent();
  },
});

registerRoute({
  name: 'removeMatchingRole',
  methods: ['DELETE'],
  route: 'connectionroles/{connectionroleid}/matchingroles/{matchingroleid}',
  handler: async ({ request, services, caller }) => {
    const { connectionroleid, matchingroleid } = parseParams(request, matchParams);
    await services.roles.removeMatch(connectionroleid, matchingroleid, caller);
    return noContent();
  },
});

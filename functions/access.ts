import { formatRights, grantAccessSchema, modifyAccessSchema, shareView } from '../shared/domain/access';
import { json, noContent } from '../shared/api/route';
import { registerRoute } from '../shared/hosts/azureFunctions/register';
import {
  connectionParams,
  principalAccessSchema,
  principalParams,
  shareListSchema,
  shareViewSchema,
} from '../shared/api/schemas';

// Dataverse's sharing messages for one connection; a share applies to both halves, whichever URL is used.

registerRoute({
  name: 'grantAccess',
  operationId: 'GrantAccess',
  summary: 'Grant access to a connection',
  description:
    'Adds rights on the connection for a user or team, on top of any they already hold; you can only grant rights you hold.',
  method: 'POST',
  route: 'records/{recordid}/connections/{connectionid}/access',
  params: connectionParams,
  body: grantAccessSchema,
  response: { status: 200, description: "The principal's share after the grant.", schema: shareViewSchema },
  handler: async ({ services, caller, params: { recordid, connectionid }, body }) =>
    json(200, shareView(await services.connections.grantAccess(recordid, connectionid, caller, body))),
});

registerRoute({
  name: 'retrieveSharedPrincipalsAndAccess',
  operationId: 'RetrieveSharedPrincipalsAndAccess',
  summary: 'List who has access to a connection',
  description: 'Lists every user and team the connection is shared with, and their rights.',
  method: 'GET',
  route: 'records/{recordid}/connections/{connectionid}/access',
  params: connectionParams,
  response: { status: 200, description: 'The shares.', schema: shareListSchema },
  handler: async ({ services, caller, params: { recordid, connectionid } }) => {
    const shares = await services.connections.sharedPrincipals(recordid, connectionid, caller);
    return json(200, { value: shares.map(shareView) });
  },
});

registerRoute({
  name: 'modifyAccess',
  operationId: 'ModifyAccess',
  summary: 'Change access to a connection',
  description: 'Replaces the rights a user or team holds on the connection through its share.',
  method: 'PUT',
  route: 'records/{recordid}/connections/{connectionid}/access/{principalid}',
  params: principalParams,
  body: modifyAccessSchema,
  response: { status: 200, description: "The principal's share after the change.", schema: shareViewSchema },
  handler: async ({ services, caller, params: { recordid, connectionid, principalid }, body }) =>
    json(200, shareView(await services.connections.modifyAccess(recordid, connectionid, caller, principalid, body))),
});

registerRoute({
  name: 'revokeAccess',
  operationId: 'RevokeAccess',
  summary: 'Revoke access to a connection',
  description: "Removes a user's or team's share of the connection entirely.",
  method: 'DELETE',
  route: 'records/{recordid}/connections/{connectionid}/access/{principalid}',
  params: principalParams,
  response: { status: 204, description: 'Revoked.' },
  handler: async ({ services, caller, params: { recordid, connectionid, principalid } }) => {
    await services.connections.revokeAccess(recordid, connectionid, caller, principalid);
    return noContent();
  },
});

registerRoute({
  name: 'retrievePrincipalAccess',
  operationId: 'RetrievePrincipalAccess',
  summary: 'Get the access of a user or team',
  description: 'Returns the rights a user or team holds on the connection and where each of them comes from.',
  method: 'GET',
  route: 'records/{recordid}/connections/{connectionid}/access/{principalid}',
  params: principalParams,
  response: { status: 200, description: 'The effective rights.', schema: principalAccessSchema },
  handler: async ({ services, caller, params: { recordid, connectionid, principalid } }) => {
    const access = await services.connections.principalAccess(recordid, connectionid, caller, principalid);
    return json(200, {
      principalid,
      accessmask: access.mask,
      accessrights: formatRights(access.mask),
      origins: access.origins,
    });
  },
});

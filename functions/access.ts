import { formatRights, grantAccessSchema, modifyAccessSchema, shareView } from '../shared/access';
import { json, noContent, parseBody, parseParams, registerRoute } from '../shared/http/route';
import { connectionParams, principalParams } from '../shared/http/schemas';

// Dataverse's sharing messages for one connection; a share applies to both halves, whichever URL is used.

registerRoute({
  name: 'grantAccess',
  methods: ['POST'],
  route: 'records/{recordid}/connections/{connectionid}/access',
  handler: async ({ request, services, caller }) => {
    const { recordid, connectionid } = parseParams(request, connectionParams);
    const input = await parseBody(request, grantAccessSchema);
    return json(200, shareView(await services.connections.grantAccess(recordid, connectionid, caller, input)));
  },
});

registerRoute({
  name: 'retrieveSharedPrincipalsAndAccess',
  methods: ['GET'],
  route: 'records/{recordid}/connections/{connectionid}/access',
  handler: async ({ request, services, caller }) => {
    const { recordid, connectionid } = parseParams(request, connectionParams);
    const shares = await services.connections.sharedPrincipals(recordid, connectionid, caller);
    return json(200, { value: shares.map(shareView) });
  },
});

registerRoute({
  name: 'modifyAccess',
  methods: ['PUT'],
  route: 'records/{recordid}/connections/{connectionid}/access/{principalid}',
  handler: async ({ request, services, caller }) => {
    const { recordid, connectionid, principalid } = parseParams(request, principalParams);
    const input = await parseBody(request, modifyAccessSchema);
    return json(200, shareView(await services.connections.modifyAccess(recordid, connectionid, caller, principalid, input)));
  },
});

registerRoute({
  name: 'revokeAccess',
  methods: ['DELETE'],
  route: 'records/{recordid}/connections/{connectionid}/access/{principalid}',
  handler: async ({ request, services, caller }) => {
    const { recordid, connectionid, principalid } = parseParams(request, principalParams);
    await services.connections.revokeAccess(recordid, connectionid, caller, principalid);
    return noContent();
  },
});

registerRoute({
  name: 'retrievePrincipalAccess',
  methods: ['GET'],
  route: 'records/{recordid}/connections/{connectionid}/access/{principalid}',
  handler: async ({ request, services, caller }) => {
    const { recordid, connectionid, principalid } = parseParams(request, principalParams);
    const access = await services.connections.principalAccess(recordid, connectionid, caller, principalid);
    return json(200, { principalid, accessmask: access.mask, accessrights: formatRights(access.mask), origins: access.origins });
  },
});



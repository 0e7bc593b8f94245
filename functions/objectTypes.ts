import { json } from '../shared/api/route';
import { registerRoute } from '../shared/hosts/azureFunctions/register';
import { objectTypesSchema } from '../shared/api/schemas';

registerRoute({
  name: 'listObjectTypes',
  operationId: 'ListObjectTypes',
  summary: 'List record types',
  description: 'Lists the record types (object type codes and logical names) this deployment accepts.',
  method: 'GET',
  route: 'objecttypes',
  visibility: 'internal',
  response: { status: 200, description: 'The record types.', schema: objectTypesSchema },
  handler: async ({ services }) =>
    json(200, {
      value: services.types.list().map(({ code, name }) => ({ objecttypecode: code, objecttypename: name })),
    }),
});

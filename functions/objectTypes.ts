import { json, registerRoute } from '../shared/http/route';

registerRoute({
  name: 'listObjectTypes',
  methods: ['GET'],
  route: 'objecttypes',
  handler: async ({ services }) => json(200, { value: services.types.list().map(({ code, name }) => ({ objecttypecode: code, objecttypename: name })) }),
});

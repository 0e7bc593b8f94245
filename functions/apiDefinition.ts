import { json, routes } from '../shared/api/route';
import { registerRoute } from '../shared/hosts/azureFunctions/register';
import { buildSwagger } from '../shared/api/openApi';
import { z } from 'zod';

registerRoute({
  name: 'apiDefinition',
  operationId: 'GetApiDefinition',
  summary: 'Get the API definition',
  description:
    'Returns the Swagger 2.0 definition of this API, generated from the code, for the Power Automate custom connector.',
  method: 'GET',
  route: 'swagger.json',
  anonymous: true,
  hidden: true,
  response: {
    status: 200,
    description: 'The definition.',
    schema: z.object({}).meta({ title: 'Swagger', description: 'A Swagger 2.0 document.' }),
  },
  handler: async ({ request }) => json(200, buildSwagger(routes, { host: new URL(request.url).host })),
});

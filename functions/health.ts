import { json } from '../shared/api/route';
import { registerRoute } from '../shared/hosts/azureFunctions/register';
import { healthSchema } from '../shared/api/schemas';

// Liveness only: it answers without a caller and without touching storage, so a storage outage shows
// as 503s on the API rather than the platform restarting healthy instances.
registerRoute({
  name: 'health',
  operationId: 'Health',
  summary: 'Check the service answers',
  description: 'Answers ok when the app is running; it needs no caller and touches no storage.',
  method: 'GET',
  route: 'health',
  anonymous: true,
  hidden: true,
  response: { status: 200, description: 'The app is running.', schema: healthSchema },
  handler: async () => json(200, { status: 'ok' }),
});

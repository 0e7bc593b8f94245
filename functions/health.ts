import { json, registerRoute } from '../shared/http/route';

// Liveness only: it answers without a caller and without touching storage, so a storage outage shows
// as 503s on the API rather than the platform restarting healthy instances.
registerRoute({
  name: 'health',
  methods: ['GET'],
  route: 'health',
  anonymous: true,
  handler: async () => json(200, { status: 'ok' }),
});

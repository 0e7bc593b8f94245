import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, principal, startApi, type TestApi } from '../support/http';

// A deployment without App Service Authentication and without local development mode: the header
// is whatever the client says, so nobody is believed.
let api: TestApi;
beforeAll(async () => {
  api = await startApi({ LOCAL_DEVELOPMENT_MODE: 'false', WEBSITE_AUTH_ENABLED: '' });
});
afterAll(async () => api.close());

describe('a hand-made principal header', () => {
  it('is refused with 401 unless App Service Authentication or local development mode vouches for it', async () => {
    const response = await call(`${api.baseUrl}/records/${randomUUID()}/connections`, {
      headers: principal(randomUUID(), { roles: ['Connections.Admin'] }),
    });
    expect(response.status).toBe(401);
    expect(response.headers.get('content-type')).toContain('application/problem+json');
    expect(response.body.code).toBe('Unauthenticated');
    expect((await call(`${api.baseUrl}/health`)).status).toBe(200);
  });
});

import { describe, expect, it } from 'vitest';
import { encodePrincipal, readCaller } from '../../shared/api/principal';
import { thrown } from '../support/errors';

const local = { platformAuthentication: false, localDevelopmentMode: true };
const id = '5c3e1f7a-6a9b-4c1e-9f2d-0a1b2c3d4e5f';
const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64');

const expectUnauthenticated = (action: () => unknown): void => {
  expect(thrown(action).kind).toBe('unauthenticated');
};

describe('the caller from x-ms-client-principal', () => {
  it('reads the object id, teams and the admin app role', () => {
    const team = 'AAAAAAAA-0000-4000-8000-00000000000A';
    const caller = readCaller(
      encodePrincipal({ id: id.toUpperCase(), teams: [team, team], roles: ['Connections.Admin'] }),
      local,
    );
    expect(caller).toEqual({ id, teams: [team.toLowerCase()], isAdmin: true });
  });

  it('accepts the short oid claim and the role claim type the principal names', () => {
    const header = encode({
      auth_typ: 'aad',
      role_typ: 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role',
      claims: [
        { typ: 'oid', val: id },
        { typ: 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role', val: 'Connections.Admin' },
      ],
    });
    expect(readCaller(header, local)).toEqual({ id, teams: [], isAdmin: true });
  });

  it('is not an administrator without the app role', () => {
    expect(readCaller(encodePrincipal({ id, roles: ['Connections.Reader'] }), local).isAdmin).toBe(false);
  });

  it('is trusted where App Service Authentication is on', () => {
    expect(readCaller(encodePrincipal({ id }), { platformAuthentication: true, localDevelopmentMode: false }).id).toBe(
      id,
    );
  });

  it('refuses every header when neither the platform nor local development vouches for it', () => {
    expectUnauthenticated(() =>
      readCaller(encodePrincipal({ id }), { platformAuthentication: false, localDevelopmentMode: false }),
    );
  });

  it('refuses missing, malformed and incomplete principals', () => {
    expectUnauthenticated(() => readCaller(undefined, local));
    expectUnauthenticated(() => readCaller('', local));
    expectUnauthenticated(() => readCaller('not base64 json!', local));
    expectUnauthenticated(() => readCaller(encode({ claims: 'none' }), local));
    expectUnauthenticated(() => readCaller(encode({ claims: [{ typ: 'name', val: 'ada' }] }), local));
    expectUnauthenticated(() => readCaller(encode({ claims: [{ typ: 'oid', val: 'not-a-guid' }] }), local));
    expectUnauthenticated(() => readCaller('A'.repeat(40_000), local));
  });
});

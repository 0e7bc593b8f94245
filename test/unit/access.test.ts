import { describe, expect, it } from 'vitest';
import {
  accessMaskSchema,
  ALL_RIGHTS,
  AccessRights,
  effectiveAccess,
  formatRights,
  grant,
  modify,
  requireGrantable,
  requireRights,
  revoke,
  type Share,
} from '../../shared/domain/access';
import { thrown } from '../support/errors';

const owner = 'aaaaaaaa-0000-4000-8000-000000000001';
const user = 'bbbbbbbb-0000-4000-8000-000000000002';
const team = 'cccccccc-0000-4000-8000-000000000003';
const connection = (shares: Share[]) => ({ ownerid: owner, shares });

describe('access masks', () => {
  it("are Dataverse's flags, accepted as a number or as names, returned as names", () => {
    expect(ALL_RIGHTS).toBe(1 + 2 + 4 + 16 + 32 + 65536 + 262144 + 524288);
    expect(accessMaskSchema.parse('ReadAccess, WriteAccess')).toBe(3);
    expect(accessMaskSchema.parse('readaccess,ShareAccess')).toBe(262145);
    expect(accessMaskSchema.parse(65537)).toBe(65537);
    expect(accessMaskSchema.parse('3')).toBe(3);
    expect(formatRights(65537)).toBe('ReadAccess, DeleteAccess');
  });

  it('refuse empty, unknown and out-of-range masks', () => {
    for (const value of [0, -1, 8, 1.5, ALL_RIGHTS + 1, '', 'ReadAccess, FlyAccess', 'nothing']) {
      expect(accessMaskSchema.safeParse(value).success, String(value)).toBe(false);
    }
  });

  it('refuse numbers beyond 32 bits, which bitwise operators would wrap onto defined rights or onto none', () => {
    for (const value of [
      1e300,
      2 ** 32,
      2 ** 32 + 1,
      2 ** 53,
      2 ** 53 + 2,
      -(2 ** 32) + 1,
      Number.MAX_VALUE,
      -1,
      -ALL_RIGHTS,
      1 + 2 ** 31,
      0.5,
      3.000001,
      '4294967296',
      '4294967297',
      '9007199254740993',
      '1e300',
      '-1',
      '1.0',
      ' ',
      ',',
    ]) {
      expect(accessMaskSchema.safeParse(value).success, String(value)).toBe(false);
    }
  });
});

describe('effective access', () => {
  it('gives the owner and administrators every right, with where it comes from', () => {
    expect(effectiveAccess({ id: owner, teams: [], isAdmin: false }, connection([])).mask).toBe(ALL_RIGHTS);
    const admin = effectiveAccess({ id: user, teams: [], isAdmin: true }, connection([]));
    expect(admin.mask).toBe(ALL_RIGHTS);
    expect(admin.origins[0]).toEqual({ right: 'ReadAccess', from: ['administrator'] });
  });

  it('is the union of direct and team shares for everyone else', () => {
    const shares: Share[] = [
      { principalid: user, principaltype: 'systemuser', accessmask: AccessRights.ReadAccess },
      { principalid: team, principaltype: 'team', accessmask: AccessRights.ReadAccess | AccessRights.WriteAccess },
    ];
    const access = effectiveAccess({ id: user, teams: [team], isAdmin: false }, connection(shares));
    expect(access.mask).toBe(3);
    expect(access.origins).toEqual([
      { right: 'ReadAccess', from: ['direct', `team:${team}`] },
      { right: 'WriteAccess', from: [`team:${team}`] },
    ]);
    expect(effectiveAccess({ id: user, teams: [], isAdmin: false }, connection(shares)).mask).toBe(1);
    // A team id does not act as a user id, nor the reverse.
    expect(effectiveAccess({ id: team, teams: [], isAdmin: false }, connection(shares)).mask).toBe(0);
  });

  it('hides what cannot be read (404) and refuses what may not be done (403)', () => {
    expect(thrown(() => requireRights({ id: user, teams: [], isAdmin: false }, connection([]))).kind).toBe('not-found');
    const readOnly = connection([{ principalid: user, principaltype: 'systemuser', accessmask: 1 }]);
    expect(thrown(() => requireRights({ id: user, teams: [], isAdmin: false }, readOnly, 'WriteAccess')).kind).toBe(
      'forbidden',
    );
    const writeOnly = connection([{ principalid: user, principaltype: 'systemuser', accessmask: 2 }]);
    expect(thrown(() => requireRights({ id: user, teams: [], isAdmin: false }, writeOnly, 'WriteAccess')).kind).toBe(
      'not-found',
    );
    expect(thrown(() => requireGrantable({ mask: 1 | AccessRights.ShareAccess, origins: [] }, 3)).kind).toBe(
      'forbidden',
    );
  });
});

describe('share changes', () => {
  const base: Share[] = [{ principalid: user, principaltype: 'systemuser', accessmask: 1 }];
  it('grant adds to existing rights, modify replaces them, revoke removes the share', () => {
    expect(grant(base, { principalid: user, principaltype: 'systemuser', accessmask: 2 })).toEqual([
      { principalid: user, principaltype: 'systemuser', accessmask: 3 },
    ]);
    expect(grant(base, { principalid: team, principaltype: 'team', accessmask: 1 })).toHaveLength(2);
    expect(modify(base, user, { accessmask: 65536 })).toEqual([
      { principalid: user, principaltype: 'systemuser', accessmask: 65536 },
    ]);
    expect(thrown(() => modify(base, team, { accessmask: 1 })).code).toBe('ShareNotFound');
    expect(revoke(base, user)).toEqual([]);
    expect(revoke(base, team)).toEqual(base);
  });
});

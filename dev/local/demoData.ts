import { grantAccessSchema } from '../../shared/domain/access';
import type { Caller } from '../../shared/domain/caller';
import { createConnectionSchema, updateConnectionSchema } from '../../shared/domain/connection';
import { createRoleSchema } from '../../shared/domain/roles';
import type { Services } from '../../shared/useCases/services';

/**
 * The demo records `npm start` loads so the connection explorer has something to draw: the README
 * walkthrough's account (Contoso) and contact (Ada Lovelace) with a few people, a team, a supplier and
 * an appointment around them. The walkthrough's own connection between Contoso and Ada is not among
 * them, so the walkthrough's curl commands still create it (201), and it then shows up in the graph.
 * Everything is owned by the walkthrough's caller; one connection is shared with a second user, so the
 * local caller picker shows what access does to the graph. The browser tests load the same records.
 */
export const demoCallers = {
  walkthrough: { id: '11111111-1111-4111-8111-111111111111', teams: [], isAdmin: false },
  second: { id: '22222222-2222-4222-8222-222222222222', teams: [], isAdmin: false },
  admin: { id: 'ad000000-0000-4000-8000-0000000000ad', teams: [], isAdmin: true },
} satisfies Record<string, Caller>;

export const demoRecords = {
  contoso: { id: 'aaaaaaaa-0000-4000-8000-000000000001', type: 'account', name: 'Contoso' },
  ada: { id: 'cccccccc-0000-4000-8000-000000000002', type: 'contact', name: 'Ada Lovelace' },
  grace: { id: 'cccccccc-0000-4000-8000-000000000004', type: 'contact', name: 'Grace Hopper' },
  alan: { id: 'cccccccc-0000-4000-8000-000000000005', type: 'contact', name: 'Alan Turing' },
  fabrikam: { id: 'aaaaaaaa-0000-4000-8000-000000000006', type: 'account', name: 'Fabrikam' },
  renewals: { id: '99999999-0000-4000-8000-000000000007', type: 'team', name: 'Renewals team' },
  review: { id: '42010000-0000-4000-8000-000000000008', type: 'appointment', name: 'Quarterly review' },
  katherine: { id: '88888888-0000-4000-8000-000000000009', type: 'systemuser', name: 'Katherine Johnson' },
} as const;

export const demoRoles = {
  employer: { id: 'e0000000-0000-4000-8000-0000000000e1', name: 'Employer', category: 1, objecttypecodes: ['account'] },
  employee: { id: 'e0000000-0000-4000-8000-0000000000e2', name: 'Employee', category: 1, objecttypecodes: ['contact'] },
  friend: { id: 'e0000000-0000-4000-8000-0000000000f1', name: 'Friend', category: 3, objecttypecodes: [] },
  supplier: { id: 'e0000000-0000-4000-8000-0000000000a1', name: 'Supplier', category: 4, objecttypecodes: ['account'] },
  customer: { id: 'e0000000-0000-4000-8000-0000000000a2', name: 'Customer', category: 4, objecttypecodes: ['account'] },
  // One-sided: no matching role, so record 2's role stays empty (the role picker offers it anyway).
  stakeholder: { id: 'e0000000-0000-4000-8000-0000000000b1', name: 'Stakeholder', category: 1000, objecttypecodes: [] },
} as const;

type RecordKey = keyof typeof demoRecords;
type RoleKey = keyof typeof demoRoles;

interface DemoConnection {
  id: string;
  from: RecordKey;
  to: RecordKey;
  fromRole?: RoleKey;
  toRole?: RoleKey;
  description: string;
  start?: string;
  end?: string;
  inactive?: boolean;
  sharedWithSecond?: boolean;
}

export const demoConnections: DemoConnection[] = [
  {
    id: 'dd000000-0000-4000-8000-000000000001',
    from: 'contoso',
    to: 'grace',
    fromRole: 'employer',
    toRole: 'employee',
    description: 'Head of engineering',
    start: '2024-01-01',
    sharedWithSecond: true,
  },
  {
    id: 'dd000000-0000-4000-8000-000000000002',
    from: 'contoso',
    to: 'alan',
    fromRole: 'employer',
    toRole: 'employee',
    description: 'Former research lead',
    start: '2023-03-01',
    inactive: true,
  },
  {
    id: 'dd000000-0000-4000-8000-000000000003',
    from: 'contoso',
    to: 'renewals',
    description: 'Team that handles the renewals',
  },
  {
    id: 'dd000000-0000-4000-8000-000000000004',
    from: 'contoso',
    to: 'fabrikam',
    fromRole: 'customer',
    toRole: 'supplier',
    description: 'Hardware supply contract',
    start: '2022-07-01',
    end: '2025-06-30',
  },
  {
    id: 'dd000000-0000-4000-8000-000000000005',
    from: 'review',
    to: 'contoso',
    description: 'Quarterly business review',
    start: '2026-10-01',
  },
  {
    id: 'dd000000-0000-4000-8000-000000000006',
    from: 'ada',
    to: 'grace',
    fromRole: 'friend',
    toRole: 'friend',
    description: 'Met at a conference',
  },
  {
    id: 'dd000000-0000-4000-8000-000000000007',
    from: 'grace',
    to: 'katherine',
    fromRole: 'stakeholder',
    description: 'Sponsors the migration project',
  },
  {
    id: 'dd000000-0000-4000-8000-000000000008',
    from: 'fabrikam',
    to: 'ada',
    fromRole: 'employer',
    toRole: 'employee',
    description: 'Consulting analyst',
    start: '2025-01-01',
  },
];

const matches: [RoleKey, RoleKey][] = [
  ['employer', 'employee'],
  ['friend', 'friend'],
  ['supplier', 'customer'],
];

/** Loads the demo roles and records; repeating it changes nothing (fixed ids, repeated creates are no-ops). */
export async function seedDemo(services: Services): Promise<void> {
  const { admin, walkthrough, second } = demoCallers;
  for (const role of Object.values(demoRoles)) {
    await services.roles.create(
      createRoleSchema.parse({
        connectionroleid: role.id,
        name: role.name,
        category: role.category,
        objecttypecodes: [...role.objecttypecodes],
      }),
      admin,
    );
  }
  for (const [a, b] of matches) await services.roles.addMatch(demoRoles[a].id, demoRoles[b].id, admin);
  for (const connection of demoConnections) {
    const from = demoRecords[connection.from];
    const to = demoRecords[connection.to];
    await services.connections.create(
      createConnectionSchema.parse({
        connectionid: connection.id,
        record1id: from.id,
        record1objecttypecode: from.type,
        record1name: from.name,
        record2id: to.id,
        record2objecttypecode: to.type,
        record2name: to.name,
        ...(connection.fromRole && { record1roleid: demoRoles[connection.fromRole].id }),
        ...(connection.toRole && { record2roleid: demoRoles[connection.toRole].id }),
        description: connection.description,
        ...(connection.start && { effectivestart: connection.start }),
        ...(connection.end && { effectiveend: connection.end }),
      }),
      walkthrough,
    );
    if (connection.sharedWithSecond) {
      await services.connections.grantAccess(
        from.id,
        connection.id,
        walkthrough,
        grantAccessSchema.parse({
          principalid: second.id,
          principaltype: 'systemuser',
          accessmask: 'ReadAccess',
        }),
      );
    }
    if (connection.inactive) {
      await services.connections.update(
        from.id,
        connection.id,
        updateConnectionSchema.parse({ statecode: 1 }),
        walkthrough,
      );
    }
  }
}

/** The explorer's link for a record, on the local host. */
export const explorerLink = (baseUrl: string, recordId: string = demoRecords.contoso.id): string =>
  `${baseUrl}/explorer?record=${recordId}`;

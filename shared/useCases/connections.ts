// Use cases: connections as the HTTP functions see them, one object over the commands, the queries and the cascade.
import type { EffectiveAccess, GrantAccessInput, ModifyAccessInput, Share } from '../domain/access';
import type { AuditRecord } from '../domain/audit';
import type { Caller } from '../domain/caller';
import type { ConnectionHalf, CreateConnectionInput, UpdateConnectionInput } from '../domain/connection';
import type { IfMatch } from '../domain/preconditions';
import type { ConnectionCascade } from './cascade';
import type { ConnectionCommands } from './connectionCommands';
import type {
  ConnectionQueries,
  ListOptions,
  ListQuery,
  ListResult,
  RecordRole,
  RoleQueryInput,
} from './connectionQueries';

/**
 * Connections: the commands (connectionCommands.ts: Dataverse's rules decided on the write protocol's
 * reads), the queries (connectionQueries.ts) and the cascade (cascade.ts) behind the method names the
 * HTTP functions call. Each method hands its call on as it is.
 */
export class ConnectionService {
  constructor(
    private readonly commands: ConnectionCommands,
    private readonly queries: ConnectionQueries,
    private readonly cascade: ConnectionCascade,
  ) {}

  create(input: CreateConnectionInput, caller: Caller): Promise<{ half: ConnectionHalf; created: boolean }> {
    return this.commands.create(input, caller);
  }

  update(
    recordId: string,
    connectionId: string,
    patch: UpdateConnectionInput,
    caller: Caller,
    ifMatch?: IfMatch,
  ): Promise<ConnectionHalf> {
    return this.commands.update(recordId, connectionId, patch, caller, ifMatch);
  }

  delete(recordId: string, connectionId: string, caller: Caller, ifMatch?: IfMatch): Promise<ConnectionHalf> {
    return this.commands.delete(recordId, connectionId, caller, ifMatch);
  }

  grantAccess(recordId: string, connectionId: string, caller: Caller, input: GrantAccessInput): Promise<Share> {
    return this.commands.grantAccess(recordId, connectionId, caller, input);
  }

  modifyAccess(
    recordId: string,
    connectionId: string,
    caller: Caller,
    principalId: string,
    input: ModifyAccessInput,
  ): Promise<Share> {
    return this.commands.modifyAccess(recordId, connectionId, caller, principalId, input);
  }

  revokeAccess(recordId: string, connectionId: string, caller: Caller, principalId: string): Promise<ConnectionHalf> {
    return this.commands.revokeAccess(recordId, connectionId, caller, principalId);
  }

  get(recordId: string, connectionId: string, caller: Caller): Promise<ConnectionHalf> {
    return this.queries.get(recordId, connectionId, caller);
  }

  sharedPrincipals(recordId: string, connectionId: string, caller: Caller): Promise<Share[]> {
    return this.queries.sharedPrincipals(recordId, connectionId, caller);
  }

  principalAccess(
    recordId: string,
    connectionId: string,
    caller: Caller,
    principalId: string,
  ): Promise<EffectiveAccess> {
    return this.queries.principalAccess(recordId, connectionId, caller, principalId);
  }

  history(
    recordId: string,
    connectionId: string,
    caller: Caller,
    options: { top: number; skiptoken?: string | undefined },
  ): Promise<{ items: AuditRecord[]; skiptoken?: string }> {
    return this.queries.history(recordId, connectionId, caller, options);
  }

  list(query: ListQuery, caller: Caller, options: ListOptions): Promise<ListResult> {
    return this.queries.list(query, caller, options);
  }

  listByRole(query: RoleQueryInput, caller: Caller, options: ListOptions): Promise<ListResult> {
    return this.queries.listByRole(query, caller, options);
  }

  /** The distinct roles a record plays in its connections, with how many connections each (a report). */
  recordRoles(recordId: string, caller: Caller): Promise<RecordRole[]> {
    return this.queries.recordRoles(recordId, caller);
  }

  deleteAllOf(recordId: string, caller: Caller): Promise<number> {
    return this.cascade.deleteAllOf(recordId, caller);
  }
}

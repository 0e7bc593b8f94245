/**
 * The closed set of domain errors. Everything a client can cause ends up as one of these; the HTTP
 * layer maps them to problem+json in exactly one place (shared/api/problem.ts).
 */
export type ErrorKind =
  | 'validation'
  | 'unauthenticated'
  | 'forbidden'
  | 'not-found'
  | 'conflict'
  | 'precondition-failed'
  | 'payload-too-large'
  | 'unsupported-media-type'
  | 'unavailable';

/**
 * The members a problem may carry besides the standard ones, each naming what a conflict is about. The
 * API definition declares exactly these (shared/api/openApi.ts), so a client can rely on their names.
 */
export const problemMembers = {
  existingconnectionid: {
    summary: 'Existing connection ID',
    description: 'The connection that already exists (ConnectionExists).',
  },
  connectionid: {
    summary: 'Connection ID',
    description: 'The connection the problem is about (DuplicateRecord, ConnectionInactive).',
  },
  connectionroleid: {
    summary: 'Role ID',
    description: 'The connection role the problem is about (DuplicateRecord, ConnectionRoleInUse).',
  },
} as const;
export type ProblemMembers = Partial<Record<keyof typeof problemMembers, string>>;

export interface FieldError {
  field: string;
  message: string;
}

export class DomainError extends Error {
  constructor(
    readonly kind: ErrorKind,
    /** Stable machine-readable code; Dataverse's error names where one exists. */
    readonly code: string,
    message: string,
    readonly extra: {
      errors?: FieldError[];
      retryAfterSeconds?: number;
      /** Additional problem members, e.g. the id of the connection a conflict is about. */
      members?: ProblemMembers;
    } = {},
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export const validationError = (message: string, errors: FieldError[] = [], code = 'ValidationFailed'): DomainError =>
  new DomainError('validation', code, message, { errors });

export const notFound = (message: string, code = 'NotFound'): DomainError =>
  new DomainError('not-found', code, message);

export const conflict = (code: string, message: string, members?: ProblemMembers): DomainError =>
  new DomainError('conflict', code, message, members ? { members } : {});

export const preconditionFailed = (message: string): DomainError =>
  new DomainError('precondition-failed', 'PreconditionFailed', message);

export const unauthenticated = (message: string): DomainError =>
  new DomainError('unauthenticated', 'Unauthenticated', message);

export const forbidden = (message: string, code = 'Forbidden'): DomainError =>
  new DomainError('forbidden', code, message);

export const unavailable = (message: string, retryAfterSeconds?: number): DomainError =>
  new DomainError('unavailable', 'StorageUnavailable', message, retryAfterSeconds ? { retryAfterSeconds } : {});

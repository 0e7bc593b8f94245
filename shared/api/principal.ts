import { z } from 'zod';
import type { Caller } from '../domain/caller';
import { unauthenticated } from '../domain/errors';
import { guidPattern } from '../domain/ids';

// The caller, decoded once per request from App Service Authentication's principal header.

export const PRINCIPAL_HEADER = 'x-ms-client-principal';
export const ADMIN_ROLE = 'Connections.Admin';

const OBJECT_ID_CLAIMS = new Set(['http://schemas.microsoft.com/identity/claims/objectidentifier', 'oid']);
const DEFAULT_ROLE_CLAIMS = ['roles', 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role'];
const GROUP_CLAIMS = new Set(['groups', 'http://schemas.microsoft.com/ws/2008/06/identity/claims/groups']);
const MAX_HEADER_LENGTH = 32 * 1024;

const principalSchema = z.object({
  auth_typ: z.string().optional(),
  name_typ: z.string().optional(),
  role_typ: z.string().optional(),
  claims: z.array(z.object({ typ: z.string(), val: z.string() })),
});

export interface TrustPolicy {
  /** App Service Authentication is on: the platform strips and sets the header itself. */
  platformAuthentication: boolean;
  /** Explicit opt-in for local development and tests. */
  localDevelopmentMode: boolean;
}

/**
 * The header is only as trustworthy as whatever set it: without App Service Authentication in front of
 * the app anyone can send one, so it is refused unless the platform (or local development) vouches.
 */
export function readCaller(headerValue: string | null | undefined, trust: TrustPolicy): Caller {
  if (!trust.platformAuthentication && !trust.localDevelopmentMode) {
    throw unauthenticated('Authentication is not configured: turn on App Service Authentication for this app.');
  }
  if (!headerValue) throw unauthenticated(`The request carries no ${PRINCIPAL_HEADER} header.`);
  if (headerValue.length > MAX_HEADER_LENGTH) throw unauthenticated(`The ${PRINCIPAL_HEADER} header is too large.`);

  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(headerValue, 'base64').toString('utf8'));
  } catch {
    throw unauthenticated(`The ${PRINCIPAL_HEADER} header is not base64-encoded JSON.`);
  }
  const parsed = principalSchema.safeParse(decoded);
  if (!parsed.success) throw unauthenticated(`The ${PRINCIPAL_HEADER} header is not a client principal.`);

  const { claims, role_typ } = parsed.data;
  const roleClaims = new Set([...DEFAULT_ROLE_CLAIMS, ...(role_typ ? [role_typ] : [])]);
  const objectId = claims.find((claim) => OBJECT_ID_CLAIMS.has(claim.typ))?.val;
  if (!objectId || !guidPattern.test(objectId)) {
    throw unauthenticated('The client principal has no object id (oid) claim holding a GUID.');
  }
  const teams = claims
    .filter((claim) => GROUP_CLAIMS.has(claim.typ) && guidPattern.test(claim.val))
    .map((claim) => claim.val.toLowerCase());
  const isAdmin = claims.some((claim) => roleClaims.has(claim.typ) && claim.val === ADMIN_ROLE);
  return { id: objectId.toLowerCase(), teams: [...new Set(teams)], isAdmin };
}

/** Builds the header value for a principal: used by tests, scripts and the README's curl examples. */
export function encodePrincipal(principal: { id: string; teams?: string[]; roles?: string[] }): string {
  const claims = [
    { typ: 'http://schemas.microsoft.com/identity/claims/objectidentifier', val: principal.id },
    ...(principal.teams ?? []).map((val) => ({ typ: 'groups', val })),
    ...(principal.roles ?? []).map((val) => ({ typ: 'roles', val })),
  ];
  return Buffer.from(JSON.stringify({ auth_typ: 'aad', role_typ: 'roles', claims })).toString('base64');
}

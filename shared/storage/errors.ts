import { RestError } from '@azure/data-tables';
import { DomainError, unavailable } from '../errors';

/** The HTTP status a storage call failed with; undefined for network faults (no response at all). */
export function storageStatus(error: unknown): number | undefined {
  return error instanceof RestError ? error.statusCode : undefined;
}

export const isStorageStatus = (error: unknown, status: number): boolean => storageStatus(error) === status;

/**
 * Anything storage throws that the domain did not handle is the storage being unavailable (throttled,
 * failing or unreachable), which the client may retry: never a 500.
 */
export function asDomainError(error: unknown): DomainError | undefined {
  if (error instanceof DomainError) return error;
  if (!(error instanceof RestError)) return undefined;
  const status = error.statusCode;
  if (status === undefined || status === 408 || status === 429 || status >= 500) {
    const retryAfter = Number(error.response?.headers.get('retry-after'));
    return unavailable(
      status === 503 || status === 429 ? 'Table storage is throttling requests; retry after the indicated delay.' : 'Table storage failed; retry the request.',
      Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : 2,
    );
  }
  return undefined;
}

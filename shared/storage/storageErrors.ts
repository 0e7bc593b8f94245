import { DomainError, unavailable } from '../domain/errors';
import { StorageError } from './tablePort';

export { isStorageStatus, storageStatus } from './tablePort';

/**
 * Anything storage throws that the domain did not handle is the storage being unavailable (throttled,
 * failing or unreachable), which the client may retry: never a 500.
 */
export function asDomainError(error: unknown): DomainError | undefined {
  if (error instanceof DomainError) return error;
  if (!(error instanceof StorageError)) return undefined;
  const status = error.status;
  if (status === undefined || status === 408 || status === 429 || status >= 500) {
    const retryAfter = error.details.retryAfterSeconds;
    return unavailable(
      status === 503 || status === 429
        ? 'Table storage is throttling requests; retry after the indicated delay.'
        : 'Table storage failed; retry the request.',
      retryAfter !== undefined && retryAfter > 0 ? retryAfter : 2,
    );
  }
  return undefined;
}

import { DomainError } from '../../shared/domain/errors';

/** The domain error an action throws; fails the test when it throws nothing or something else. */
export function thrown(action: () => unknown): DomainError {
  try {
    action();
  } catch (error) {
    if (error instanceof DomainError) return error;
    throw error;
  }
  throw new Error('expected a domain error');
}

/** The domain error a promise rejects with; fails the test when it resolves or rejects otherwise. */
export async function rejection(action: Promise<unknown>): Promise<DomainError> {
  try {
    await action;
  } catch (error) {
    if (error instanceof DomainError) return error;
    throw error;
  }
  throw new Error('expected the operation to fail');
}

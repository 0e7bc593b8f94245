/** Runs `action` over `items` with at most `limit` in flight. */
export async function forEachLimited<T>(items: T[], limit: number, action: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await action(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * A random pause that grows with the attempt ("full jitter"): writers that lost a race to the same
 * entity spread out instead of colliding again in lockstep.
 */
export const jitteredPause = (attempt: number, stepMs = 10): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, Math.random() * stepMs * (attempt + 1)));

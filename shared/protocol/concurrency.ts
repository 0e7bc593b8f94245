// Protocol: bounded concurrency and jittered pauses for the protocol's rounds (real time in the app, the scheduler's in the simulation).
/**
 * Runs `action` over `items` with at most `limit` in flight. The first failure stops new items from
 * starting, and is thrown only once every action in flight has ended: nothing keeps writing after the
 * caller has answered.
 */
export async function forEachLimited<T>(items: T[], limit: number, action: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (next < items.length && !failure) {
      const item = items[next++] as T;
      try {
        await action(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
}

/**
 * A random pause that grows with the attempt ("full jitter"): writers that lost a race to the same
 * entity spread out instead of colliding again in lockstep.
 */
export const jitteredPause = (waiting: Waiting, attempt: number, stepMs = 10): Promise<void> =>
  waiting.sleep(waiting.random() * stepMs * (attempt + 1));

/** How the domain waits and draws: real time in the app, the scheduler's in the simulation. */
export interface Waiting {
  sleep: (ms: number) => Promise<void>;
  random: () => number;
}

export const realWaiting: Waiting = {
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  random: Math.random,
};

/**
 * Awaits every promise, then throws the first failure: unlike Promise.all, nothing is still running
 * when the caller hears of a failure (and answers its client).
 */
export async function allSettled(promises: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) throw failed.reason;
}

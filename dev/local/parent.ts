/**
 * A child process started by a test, the soak or the bench must not outlive it when it dies without
 * stopping the child: the child exits once its parent is gone.
 */
export function exitWithParent(parent: number): void {
  if (!Number.isInteger(parent) || parent <= 0) return;
  setInterval(() => {
    try {
      process.kill(parent, 0);
    } catch {
      process.exit(0);
    }
  }, 1000).unref();
}

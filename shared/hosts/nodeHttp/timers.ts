// Hosts, node:http adapter: runs the timer table on its schedules, as the Functions host does in Azure.
import { Cron } from 'croner';
import { runTimer } from '../invoke';
import { type TimerDefinition, type TriggerLog, timers } from '../triggers';

export interface RunningTimers {
  /** The timers started, by name, with when each runs next. */
  readonly scheduled: { name: string; next: Date | null }[];
  stop(): void;
}

const consoleLog = (name: string): TriggerLog => ({
  log: (message) => console.log(`[${name}] ${message}`),
  warn: (message) => console.warn(`[${name}] ${message}`),
});

/**
 * Starts every timer of the table on its NCRONTAB schedule (seconds first, as Azure's). Like the
 * Functions host, a run never overlaps the previous run of the same timer, and a failed run is logged
 * and waits for the next occurrence. The timers do not keep the process alive on their own.
 */
export function startTimers(
  table: TimerDefinition[] = timers,
  logOf: (name: string) => TriggerLog = consoleLog,
): RunningTimers {
  const jobs = table.map((definition) => {
    const log = logOf(definition.name);
    return new Cron(
      definition.schedule,
      { name: definition.name, protect: true, unref: true, timezone: 'UTC' },
      async () => {
        try {
          await runTimer(definition, log);
        } catch (error) {
          log.warn(`failed: ${error instanceof Error ? error.message : String(error)}`);
        }
      },
    );
  });
  return {
    get scheduled() {
      return jobs.map((job, index) => ({ name: table[index]?.name ?? '', next: job.nextRun() }));
    },
    stop: () => jobs.forEach((job) => job.stop()),
  };
}

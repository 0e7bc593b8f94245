// Hosts: the triggers that are not HTTP routes (the route table is the API's, shared/api/route.ts). The
// Azure Functions adapter adds to this table as function modules load; every host runs what is in it.
import type { Services } from '../useCases/services';

/** Where a trigger reports: the Functions host's invocation log, or the console locally. */
export interface TriggerLog {
  log(message: string): void;
  warn(message: string): void;
}

export interface TimerDefinition {
  /** Function name in Azure. */
  name: string;
  /** NCRONTAB with seconds, as the Functions timer trigger takes it: "0 *\/15 * * * *". */
  schedule: string;
  handler(services: Services, log: TriggerLog): Promise<void>;
}

/** The single timer table. */
export const timers: TimerDefinition[] = [];

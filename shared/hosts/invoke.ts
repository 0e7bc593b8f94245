// Hosts: what every runtime adapter does with a trigger, so the Azure Functions host and the node:http
// host answer alike: the caller, the input, the use case, and every error as a problem response.
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { problemResponse, domainProblem } from '../api/problem';
import { PRINCIPAL_HEADER, readCaller } from '../api/principal';
import { parseInput, type RouteDefinition } from '../api/route';
import type { Caller } from '../domain/caller';
import { asDomainError } from '../storage/storageErrors';
import { getServices, type Services } from '../useCases/services';
import type { TimerDefinition, TriggerLog } from './triggers';

/** Runs a route: caller, domain call, and every error turned into a problem response. */
export async function invoke(
  definition: RouteDefinition,
  request: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  try {
    if (definition.anonymous) {
      const input = await parseInput(definition, request);
      return await definition.handler({
        request,
        caller: anonymousCaller,
        ...input,
        get services() {
          return getServices();
        },
      });
    }
    const services = getServices();
    const caller = callerOf(request, services);
    const input = await parseInput(definition, request);
    await services.ready();
    return await definition.handler({ request, services, caller, ...input });
  } catch (error) {
    const domainError = asDomainError(error);
    if (domainError) {
      if (domainError.kind === 'unavailable') context.warn(`${definition.name}: ${String(error)}`);
      return domainProblem(domainError);
    }
    context.error(`${definition.name} failed`, error);
    return problemResponse(500, 'InternalError', 'The request failed unexpectedly; the failure has been logged.');
  }
}

/** Runs a timer trigger with the process's services, once the tables exist. */
export async function runTimer(definition: TimerDefinition, log: TriggerLog): Promise<void> {
  const services = getServices();
  await services.ready();
  await definition.handler(services, log);
}

const anonymousCaller: Caller = { id: '', teams: [], isAdmin: false };

function callerOf(request: HttpRequest, services: Services): Caller {
  return readCaller(request.headers.get(PRINCIPAL_HEADER), {
    platformAuthentication: services.settings.WEBSITE_AUTH_ENABLED,
    localDevelopmentMode: services.settings.LOCAL_DEVELOPMENT_MODE,
  });
}

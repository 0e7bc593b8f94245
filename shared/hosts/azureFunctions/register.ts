// Hosts, Azure Functions adapter: function modules (functions/*.ts) declare their triggers here. Each
// declaration joins the one table of its kind, which every host serves, and inside the Functions host
// is also registered with it.
import { app } from '@azure/functions';
import type { z } from 'zod';
import { type RouteDefinition, routes } from '../../api/route';
import { invoke, runTimer } from '../invoke';
import { type TimerDefinition, timers } from '../triggers';
import { insideFunctionsHost } from './functionsRuntime';

export function registerRoute<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType>(
  definition: RouteDefinition<P, Q, B>,
): void {
  const route = definition as unknown as RouteDefinition;
  routes.push(route);
  if (!insideFunctionsHost) return;
  // Authentication is App Service Authentication's job (Entra ID in front of the app), not function keys.
  app.http(route.name, {
    methods: [route.method],
    route: route.route,
    authLevel: 'anonymous',
    handler: (request, context) => invoke(route, request, context),
  });
}

export function registerTimer(definition: TimerDefinition): void {
  timers.push(definition);
  if (!insideFunctionsHost) return;
  app.timer(definition.name, {
    schedule: definition.schedule,
    handler: (_timer, context) =>
      runTimer(definition, { log: (message) => context.log(message), warn: (message) => context.warn(message) }),
  });
}

// Dev tooling, ops: renders docs/api-reference.md from the route and timer tables, so the API's
// reference is never a second, hand-kept list of routes (test/connector/apiReference.test.ts fails
// when the committed file is stale). `npm run api-reference` writes it.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { swaggerSchema } from '../../shared/api/openApi';
import { type RouteDefinition, routes } from '../../shared/api/route';
import { loadFunctions } from '../../shared/hosts/nodeHttp/loadFunctions';
import { type TimerDefinition, timers } from '../../shared/hosts/triggers';

type Json = { [key: string]: unknown };

/** Where the reference is written, relative to the repository root. */
export const API_REFERENCE_PATH = join('docs', 'api-reference.md');

/** A table cell: one line, no column breaks. */
const cell = (text: string | number | boolean | undefined): string =>
  String(text ?? '')
    .replace(/\s*\n\s*/g, ' ')
    .replace(/\|/g, '\\|');

const code = (text: string): string => `\`${text}\``;

/** A parameter's or field's type as a reader needs it: type, format, allowed values, bounds. */
function typeOf(property: Json): string {
  const items = property.items as Json | undefined;
  let type =
    property.type === 'array' && items
      ? `array of ${typeOf(items)}`
      : typeof property.type === 'string'
        ? property.type
        : 'any';
  if (typeof property.format === 'string') type += ` (${property.format})`;
  const details: string[] = [];
  if (Array.isArray(property.enum))
    details.push(`one of ${property.enum.map((value) => code(String(value))).join(', ')}`);
  const bound = (value: unknown): string => (typeof value === 'number' ? String(value) : '…');
  if (typeof property.minimum === 'number' || typeof property.maximum === 'number')
    details.push(`${bound(property.minimum)}-${bound(property.maximum)}`);
  if (typeof property.maxLength === 'number') details.push(`at most ${property.maxLength} characters`);
  return details.length > 0 ? `${type}: ${details.join('; ')}` : type;
}

/** Whether a field must be sent, or what it defaults to. */
function presence(property: Json, required: boolean): string {
  if (property.default !== undefined) return `default ${code(JSON.stringify(property.default))}`;
  return required ? 'required' : 'optional';
}

/** The fields of an object schema (route, query or body) as a table, or a sentence when there are none. */
function fieldTable(schema: z.ZodType, none: string): string[] {
  const json = swaggerSchema(schema, 'input');
  const properties = Object.entries((json.properties ?? {}) as Record<string, Json>);
  if (properties.length === 0) {
    // A loose object takes whatever it is given (the explorer keeps its state in its query string).
    return [json.additionalProperties === false ? none : 'Any: the route reads what it needs and ignores the rest.'];
  }
  const required = new Set((json.required ?? []) as string[]);
  return [
    '| Name | Type | Required | Description |',
    '|---|---|---|---|',
    ...properties.map(
      ([name, property]) =>
        `| ${code(name)} | ${cell(typeOf(property))} | ${cell(presence(property, required.has(name)))} | ${cell(typeof property.description === 'string' ? property.description : undefined)} |`,
    ),
  ];
}

/** The title a schema carries in the API definition (`.meta({ title })`), if any. */
function titleOf(schema: z.ZodType): string | undefined {
  const json = swaggerSchema(schema, 'output');
  return typeof json.title === 'string' ? json.title : undefined;
}

/** The top-level fields of a response body, by name. */
function responseFields(schema: z.ZodType): string {
  const json = swaggerSchema(schema, 'output');
  const names = Object.keys(json.properties ?? {});
  return names.length > 0 ? names.map(code).join(', ') : 'a JSON object';
}

/** Stands for "no query schema": such a route refuses every query parameter (shared/api/route.ts, parseInput). */
const emptyQuery = z.strictObject({});

const anchorOf = (route: RouteDefinition): string => route.operationId.toLowerCase();

// Code-point order, not the locale's, so every machine writes the same file.
const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const byPath = (a: RouteDefinition, b: RouteDefinition): number =>
  compare(a.route, b.route) || compare(a.method, b.method);

function routeSection(route: RouteDefinition): string[] {
  const { response } = route;
  const traits = [
    route.anonymous ? 'No caller needed (anonymous).' : 'Needs a caller (`x-ms-client-principal`).',
    ...(route.ifMatch ? ['Honours `If-Match` (412 `PreconditionFailed` when the ETag is not current).'] : []),
    ...(route.pageable ? ['A page: follow `nextLink` for the next one.'] : []),
    route.hidden
      ? 'Not in the connector definition.'
      : `In the connector${route.visibility ? ` (visibility ${code(route.visibility)})` : ''}.`,
  ];
  const success = [`- **${response.status}**: ${response.description}`];
  for (const [status, description] of Object.entries(response.alternatives ?? {}))
    success.push(`- **${status}**: ${description}`);
  const lines = [
    `### ${route.operationId}`,
    '',
    `${code(`${route.method} /api/${route.route}`)}: ${route.summary}. ${route.description}`,
    '',
    traits.join(' '),
    '',
  ];
  if (route.params) lines.push('Route parameters:', '', ...fieldTable(route.params, 'None.'), '');
  lines.push(
    'Query parameters:',
    '',
    ...fieldTable(route.query ?? emptyQuery, 'None: any query parameter is refused (400 `ValidationFailed`).'),
    '',
  );
  if (route.body) {
    const title = titleOf(route.body);
    lines.push(`Body${title ? ` (${code(title)})` : ''}, JSON:`, '', ...fieldTable(route.body, 'An empty object.'), '');
  }
  lines.push('Answers:', '', ...success);
  if (response.schema) {
    const title = titleOf(response.schema);
    lines.push(`- Body${title ? ` ${code(title)}` : ''}: ${responseFields(response.schema)}.`);
  }
  for (const [name, description] of Object.entries(response.headers ?? {}))
    lines.push(`- Header ${code(name)}: ${description}`);
  lines.push('- Errors: `application/problem+json` (see [Errors](api.md#errors)).', '');
  return lines;
}

function timerRow(timer: TimerDefinition): string {
  return `| ${code(timer.name)} | ${code(timer.schedule)} |`;
}

/** The reference as Markdown, from the tables as loaded (call after the function modules registered). */
export function renderApiReference(table: RouteDefinition[] = routes, timerTable: TimerDefinition[] = timers): string {
  const sorted = [...table].sort(byPath);
  return [
    '# API reference',
    '',
    'Every HTTP route and timer the app registers, generated from the route table (`shared/api/route.ts`) and the',
    'zod schemas that validate each request, by `npm run api-reference` (dev/ops/apiReference.ts). Do not edit by',
    'hand: `test/connector/apiReference.test.ts` fails when this file is not what the code generates. Errors, paging',
    'and dates are explained in [api.md](api.md); the Power Automate connector is generated from the same table.',
    '',
    "All routes are under `/api`. Field names are Dataverse's logical names.",
    '',
    '| Method | Route | Operation | Summary | Success |',
    '|---|---|---|---|---|',
    ...sorted.map(
      (route) =>
        `| ${route.method} | ${code(`/api/${route.route}`)} | [${route.operationId}](#${anchorOf(route)}) | ${cell(route.summary)} | ${[route.response.status, ...Object.keys(route.response.alternatives ?? {})].join(', ')} |`,
    ),
    '',
    '## Routes',
    '',
    ...sorted.flatMap(routeSection),
    '## Timers',
    '',
    'Timer functions, registered with the Functions host (NCRONTAB with seconds, as its timer trigger takes it).',
    '',
    '| Function | Schedule |',
    '|---|---|',
    ...timerTable.map(timerRow),
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  await loadFunctions(join(__dirname, '..', '..', 'functions'));
  // From dist/dev/ops, three levels up is the repository.
  const target = join(__dirname, '..', '..', '..', API_REFERENCE_PATH);
  writeFileSync(target, renderApiReference());
  console.log(`Wrote ${target}: ${routes.length} routes, ${timers.length} timer(s)`);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}

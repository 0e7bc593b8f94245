import Ajv, { type ValidateFunction } from 'ajv';
import type { Exchange } from '../../shared/hosts/nodeHttp/server';
import { guidPattern } from '../../shared/domain/ids';
import type { Json } from './json';

/**
 * The contract every answer must keep, checked against the served API definition: the status is one
 * the operation declares (or an error, answered with the `default` Problem), the body validates against
 * the schema declared for that status, declared headers are present, and every error is
 * application/problem+json. The test host runs each answer it sends through this, so no test, raw
 * socket or fuzzer included, can receive an answer the definition does not describe.
 */

interface Operation {
  operationId: string;
  method: string;
  segments: string[];
  parameters: Json[];
  responses: Json;
}

// The parts of a parameter's declaration a value is checked against (formats are hints for makers here).
const PARAMETER_RULES = ['type', 'enum', 'minimum', 'maximum', 'minLength', 'maxLength', 'pattern'];

/** A query or path value as the type its parameter declares (the wire carries only strings). */
function asDeclaredType(value: string, type: unknown): unknown {
  if (type === 'boolean') return value === 'true' ? true : value === 'false' ? false : value;
  if ((type === 'integer' || type === 'number') && /^-?\d+(\.\d+)?$/.test(value)) return Number(value);
  return value;
}

/** Swagger's x-nullable as JSON Schema, so the validator accepts the nulls the definition allows. */
export function withNulls(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withNulls);
  if (!node || typeof node !== 'object') return node;
  const copy = Object.fromEntries(Object.entries(node as Json).map(([key, value]) => [key, withNulls(value)]));
  if (copy['x-nullable'] === true && typeof copy.type === 'string') copy.type = [copy.type, 'null'];
  return copy;
}

// What the API promises for dates: RFC 3339 date-times (the app always answers the normalised UTC form).
const dateTimePattern =
  /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/;

export function contractAjv(): Ajv {
  const ajv = new Ajv({ strict: false, allErrors: true });
  ajv.addFormat('uuid', guidPattern);
  ajv.addFormat('date-time', {
    validate: (value: string) => dateTimePattern.test(value) && !Number.isNaN(Date.parse(value)),
  });
  return ajv;
}

const isProblemType = (type: string | undefined): boolean => /^application\/problem\+json\b/i.test(type ?? '');
const isJsonType = (type: string | undefined): boolean => /^application\/json\b/i.test(type ?? '');

export class ContractChecker {
  private readonly ajv = contractAjv();
  private readonly operations: Operation[];
  private readonly basePath: string;
  private readonly compiled = new Map<string, ValidateFunction>();

  /** `unlisted`: paths (under the base path) the definition leaves out on purpose, such as /health. */
  constructor(
    private readonly definition: Json,
    private readonly unlisted: string[] = [],
  ) {
    this.basePath = String(definition.basePath ?? '');
    this.operations = Object.entries(definition.paths as Json).flatMap(([path, item]) =>
      Object.entries(item as Json).map(([method, operation]) => ({
        operationId: String((operation as Json).operationId),
        method: method.toUpperCase(),
        segments: path.split('/').filter(Boolean),
        parameters: ((operation as Json).parameters ?? []) as Json[],
        responses: (operation as Json).responses as Json,
      })),
    );
  }

  private validator(schema: Json): ValidateFunction {
    const key = JSON.stringify(schema);
    let validate = this.compiled.get(key);
    if (!validate) {
      validate = this.ajv.compile(withNulls({ ...schema, definitions: this.definition.definitions }) as Json);
      this.compiled.set(key, validate);
    }
    return validate;
  }

  /** The operation a request addresses: same method, and literal segments equal (case-insensitively, as the host routes). */
  operationOf(method: string, url: string): Operation | undefined {
    const path = new URL(url, 'http://host').pathname;
    if (!path.startsWith(`${this.basePath}/`)) return undefined;
    const actual = path.slice(this.basePath.length).split('/').filter(Boolean);
    return this.operations.find(
      (operation) =>
        operation.method === method.toUpperCase() &&
        operation.segments.length === actual.length &&
        operation.segments.every(
          (segment, index) => /^\{.+\}$/.test(segment) || segment.toLowerCase() === actual[index]?.toLowerCase(),
        ),
    );
  }

  /**
   * A request the app accepted must be one the definition allows: every query parameter declared, and
   * every query and path value valid for its declaration, so a maker's connector can send it.
   */
  private checkParameters(operation: Operation, exchange: Exchange, where: string): string[] {
    const url = new URL(exchange.url, 'http://host');
    const actual = url.pathname.slice(this.basePath.length).split('/').filter(Boolean);
    const values: { name: string; in: string; value: string }[] = [
      ...[...url.searchParams].map(([name, value]) => ({ name, in: 'query', value })),
      ...operation.segments.flatMap((segment, index) => {
        const name = /^\{(.+)\}$/.exec(segment)?.[1];
        return name ? [{ name, in: 'path', value: decodeURIComponent(actual[index] ?? '') }] : [];
      }),
    ];
    return values.flatMap(({ name, in: location, value }) => {
      const declared = operation.parameters.find((parameter) => parameter.name === name && parameter.in === location);
      if (!declared)
        return [
          `${where}: the app accepted the ${location} parameter ${name}, which ${operation.operationId} does not declare`,
        ];
      const schema = Object.fromEntries(
        PARAMETER_RULES.filter((rule) => declared[rule] !== undefined).map((rule) => [rule, declared[rule]]),
      );
      const valid = this.validator(schema);
      return valid(asDeclaredType(value, declared.type))
        ? []
        : [
            `${where}: the app accepted ${name}=${value}, which its declaration refuses: ${this.ajv.errorsText(valid.errors)}`,
          ];
    });
  }

  /** Why a request body would not validate against what an operation declares; empty when it does. */
  checkRequestBody(operationId: string, body: unknown): string[] {
    const operation = this.operations.find((candidate) => candidate.operationId === operationId);
    const schema = operation?.parameters.find((parameter) => parameter.in === 'body')?.schema as Json | undefined;
    if (!schema) return [`${operationId} declares no body`];
    const valid = this.validator(schema);
    return valid(body) ? [] : [`${operationId} body: ${this.ajv.errorsText(valid.errors)}`];
  }

  /** Every way the answer breaks the contract; empty when it keeps it. */
  check(exchange: Exchange): string[] {
    const where = `${exchange.method} ${exchange.url} -> ${exchange.status}`;
    const type = exchange.headers['content-type'];
    const problems: string[] = [];
    const text = exchange.body.toString('utf8');
    const parsed = (): unknown => {
      try {
        return JSON.parse(text);
      } catch {
        problems.push(`${where}: the body is not JSON`);
        return undefined;
      }
    };
    const validate = (schema: Json, what: string) => {
      const body = parsed();
      if (body === undefined) return;
      const valid = this.validator(schema);
      if (!valid(body))
        problems.push(
          `${where}: ${what} does not match the definition: ${this.ajv.errorsText(valid.errors)} in ${text.slice(0, 500)}`,
        );
    };
    const operation = this.operationOf(exchange.method, exchange.url);
    if (exchange.status >= 400) {
      if (!isProblemType(type))
        problems.push(`${where}: an error must be application/problem+json, not ${type ?? 'untyped'}`);
      const declared = (operation?.responses[String(exchange.status)] ?? operation?.responses.default) as
        Json | undefined;
      validate((declared?.schema as Json | undefined) ?? { $ref: '#/definitions/Problem' }, 'the problem');
      // 503 is storage's (declared and retryable); any other 5xx is a bug, whatever the request was.
      if (exchange.status >= 500 && exchange.status !== 503) problems.push(`${where}: a server error`);
      return problems;
    }
    if (!operation) {
      const path = new URL(exchange.url, 'http://host').pathname;
      // Route templates ("explorer/{file}"): a parameter stands for one path segment.
      const matches = (unlisted: string) =>
        new RegExp(
          `^${`${this.basePath}/${unlisted}`.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`,
          'i',
        ).test(path);
      if (!this.unlisted.some(matches)) {
        problems.push(`${where}: a success from no operation the definition declares`);
      }
      return problems;
    }
    problems.push(...this.checkParameters(operation, exchange, where));
    const declared = operation.responses[String(exchange.status)] as Json | undefined;
    if (!declared) {
      problems.push(`${where}: ${operation.operationId} does not declare status ${exchange.status}`);
      return problems;
    }
    for (const header of Object.keys((declared.headers ?? {}) as Json)) {
      if (exchange.headers[header.toLowerCase()] === undefined)
        problems.push(`${where}: the declared header ${header} is missing`);
    }
    if (declared.schema) {
      if (!isJsonType(type))
        problems.push(`${where}: a body declared with a schema must be application/json, not ${type ?? 'untyped'}`);
      validate(declared.schema as Json, `the ${operation.operationId} response`);
    } else if (exchange.body.length > 0) {
      problems.push(`${where}: ${operation.operationId} declares no body for ${exchange.status}`);
    }
    return problems;
  }
}

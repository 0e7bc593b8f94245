import type { HttpResponseInit } from '@azure/functions';
import { DomainError, type ErrorKind } from '../domain/errors';

const statusOf: Record<ErrorKind, number> = {
  validation: 400,
  unauthenticated: 401,
  forbidden: 403,
  'not-found': 404,
  conflict: 409,
  'precondition-failed': 412,
  'payload-too-large': 413,
  'unsupported-media-type': 415,
  unavailable: 503,
};

const titleOf: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  errors?: { field: string; message: string }[];
  [member: string]: unknown;
}

/** The one place where errors become RFC 9457 problem documents. */
export function problemResponse(
  status: number,
  code: string,
  detail: string,
  extra: Partial<Problem> = {},
  headers: Record<string, string> = {},
): HttpResponseInit {
  const body: Problem = {
    type: 'about:blank',
    title: titleOf[status] ?? 'Error',
    status,
    detail,
    code,
    ...extra,
  };
  return { status, jsonBody: body, headers: { 'content-type': PROBLEM_CONTENT_TYPE, ...headers } };
}

export function domainProblem(error: DomainError): HttpResponseInit {
  const status = statusOf[error.kind];
  const headers: Record<string, string> = error.extra.retryAfterSeconds
    ? { 'retry-after': String(error.extra.retryAfterSeconds) }
    : {};
  const extra: Partial<Problem> = {
    ...error.extra.members,
    ...(error.extra.errors?.length ? { errors: error.extra.errors } : {}),
  };
  return problemResponse(status, error.code, error.message, extra, headers);
}

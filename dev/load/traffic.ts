// Dev, load: HTTP clients that retry as Power Automate does, and the history of every request they send.
import { encodePrincipal } from '../../shared/api/principal';
import { reciprocalIdOf } from '../../shared/domain/ids';

/**
 * Clients of the API as the crash test, the concurrent model test and the soak drive it: requests sent
 * and retried the way Power Automate retries them (the same request, same body, same connectionid,
 * same If-Match, on 5xx, 429, 408 and connection errors, with exponential back-off, a bounded number of
 * times), and a history of every request with the time of each attempt and its answer, from which
 * dev/load/invariants.ts decides what must hold.
 */

/** Milliseconds on one monotonic clock shared by every client of the process. */
export const clock = (): number => performance.now();

export type Headers = Record<string, string>;

export const ADMIN_ROLE = 'Connections.Admin';

/** The x-ms-client-principal header of a user (local development mode trusts it). */
export function identity(id: string, options: { teams?: string[]; admin?: boolean } = {}): Headers {
  return {
    'x-ms-client-principal': encodePrincipal({
      id,
      teams: options.teams ?? [],
      roles: options.admin ? [ADMIN_ROLE] : [],
    }),
  };
}

export interface RetryPolicy {
  /** Retries after the first attempt (0: give up at once). */
  retries: number;
  /** First back-off; doubled on each retry, with ±20 % jitter. */
  baseMs: number;
  /** Longest back-off, Retry-After included. */
  maxMs: number;
  /** One attempt is abandoned (and counts as a connection error) after this long. */
  timeoutMs: number;
}

/** Power Automate's default policy (exponential, 4 retries), scaled to a test's time. */
export const POWER_AUTOMATE: RetryPolicy = { retries: 4, baseMs: 150, maxMs: 2000, timeoutMs: 15_000 };
export const GIVE_UP_AT_ONCE: RetryPolicy = { ...POWER_AUTOMATE, retries: 0 };
/** Reads made to check the state: patient, since the app may be restarting. */
export const CHECK_READS: RetryPolicy = { retries: 12, baseMs: 100, maxMs: 1000, timeoutMs: 15_000 };

export interface RequestSpec {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  /** Path under the API base, e.g. /records/{id}/connections. */
  path: string;
  headers: Headers;
  body?: unknown;
}

export interface Attempt {
  start: number;
  end: number;
  /** Undefined when no HTTP answer came (refused, reset, timed out). */
  status?: number;
  body?: unknown;
  etag?: string;
  /** The answer's Retry-After, in milliseconds. */
  retryAfterMs?: number;
  error?: string;
}

export interface Exchange {
  request: RequestSpec;
  attempts: Attempt[];
}

export const isRetryable = (status: number | undefined): boolean =>
  status === undefined || status >= 500 || status === 429 || status === 408;
export const lastAttempt = (exchange: Exchange): Attempt | undefined => exchange.attempts.at(-1);
/** The status the client was left with; undefined when the last attempt got no answer (or none was made). */
export const finalStatus = (exchange: Exchange): number | undefined => lastAttempt(exchange)?.status;
export const is2xx = (status: number | undefined): boolean => status !== undefined && status >= 200 && status < 300;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function errorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as Error & { cause?: { code?: string; message?: string } }).cause;
  return [error.name === 'TimeoutError' ? 'timeout' : error.message, cause?.code ?? cause?.message]
    .filter(Boolean)
    .join(': ');
}

/** One attempt of a request; never throws (a connection error is an attempt without a status). */
export async function attemptOnce(baseUrl: string, request: RequestSpec, timeoutMs: number): Promise<Attempt> {
  const start = clock();
  const headers: Headers = { ...request.headers };
  if (request.body !== undefined) headers['content-type'] = 'application/json';
  try {
    const response = await fetch(`${baseUrl}${request.path}`, {
      method: request.method,
      headers,
      ...(request.body !== undefined && { body: JSON.stringify(request.body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    const type = response.headers.get('content-type') ?? '';
    let body: unknown = text;
    if (text && type.includes('json')) {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    const etag = response.headers.get('etag');
    const retryAfter = Number(response.headers.get('retry-after') ?? Number.NaN) * 1000;
    return {
      start,
      end: clock(),
      status: response.status,
      body,
      ...(etag && { etag }),
      ...(Number.isFinite(retryAfter) && retryAfter > 0 && { retryAfterMs: retryAfter }),
    };
  } catch (error) {
    return { start, end: clock(), error: errorText(error) };
  }
}

function backoff(policy: RetryPolicy, retry: number, previous: Attempt, random: () => number): number {
  const exponential = policy.baseMs * 2 ** retry * (0.8 + 0.4 * random());
  return Math.min(policy.maxMs, Math.max(exponential, previous.retryAfterMs ?? 0));
}

/**
 * Sends the exchange's request until it gets an answer that is not worth retrying or the policy's
 * retries are spent, appending each attempt. An exchange that was given up earlier can be passed
 * again later: its new attempts are the same request, sent again.
 */
export async function perform(
  baseUrl: string,
  exchange: Exchange,
  policy: RetryPolicy,
  random: () => number = Math.random,
): Promise<Exchange> {
  for (let retry = 0; retry <= policy.retries; retry++) {
    if (retry > 0) await sleep(backoff(policy, retry - 1, lastAttempt(exchange) as Attempt, random));
    const attempt = await attemptOnce(baseUrl, exchange.request, policy.timeoutMs);
    exchange.attempts.push(attempt);
    if (!isRetryable(attempt.status)) break;
  }
  return exchange;
}

/** A GET made to observe the state (not part of the history's operations). */
export interface Read {
  start: number;
  end: number;
  status?: number;
  body?: unknown;
}

export async function read(
  baseUrl: string,
  path: string,
  headers: Headers,
  policy: RetryPolicy = CHECK_READS,
): Promise<Read> {
  const exchange = await perform(baseUrl, { request: { method: 'GET', path, headers }, attempts: [] }, policy);
  const first = exchange.attempts[0] as Attempt;
  const last = lastAttempt(exchange) as Attempt;
  return {
    start: first.start,
    end: last.end,
    ...(last.status !== undefined && { status: last.status, body: last.body }),
  };
}

/** A list read to its end (following nextLink, at most `maxPages` pages); undefined items when a page failed. */
export async function readList(
  baseUrl: string,
  path: string,
  headers: Headers,
  maxPages = 50,
): Promise<Read & { items?: unknown[] }> {
  const start = clock();
  const items: unknown[] = [];
  let next: string | undefined = path;
  let last: Read | undefined;
  for (let page = 0; next !== undefined && page < maxPages; page++) {
    last = await read(baseUrl, next, headers);
    if (last.status !== 200 || typeof last.body !== 'object' || last.body === null) return { ...last, start };
    const body = last.body as { value?: unknown[]; nextLink?: string };
    items.push(...(body.value ?? []));
    // nextLink is absolute; keep the path under the API base, so a restarted app on the same port serves it.
    next =
      body.nextLink === undefined
        ? undefined
        : new URL(body.nextLink).pathname.replace(/^\/api/, '') + new URL(body.nextLink).search;
  }
  if (next !== undefined) return { start, end: clock(), status: 0, body: `more than ${maxPages} pages` };
  return { start, end: last?.end ?? clock(), status: 200, items };
}

export type OpKind = 'create' | 'update' | 'state' | 'role' | 'assign' | 'grant' | 'revoke' | 'delete' | 'cascade';

/**
 * A connection as its creator asked for it: the master half's id in record 1, and in record 2 the id of
 * the half it relates to (Dataverse's relatedconnectionid of the master half).
 */
export interface ConnectionRef {
  id: string;
  relatedId: string;
  record1: string;
  record2: string;
}

export type Side = 'record1' | 'record2';

export const halfPath = (ref: ConnectionRef, side: Side): string =>
  side === 'record1'
    ? `/records/${ref.record1}/connections/${ref.id}`
    : `/records/${ref.record2}/connections/${ref.relatedId}`;
export const recordOf = (ref: ConnectionRef, side: Side): string => (side === 'record1' ? ref.record1 : ref.record2);
export const otherRecordOf = (ref: ConnectionRef, side: Side): string =>
  side === 'record1' ? ref.record2 : ref.record1;

/** What was read right after an operation answered (2xx), or after a 409 ConnectionExists. */
export interface Observation {
  start: number;
  end: number;
  /** Both halves as an administrator reads them: [record 1's, record 2's]. */
  halves?: [Read, Read];
  /** Both halves' shares, as an administrator reads them. */
  access?: [Read, Read];
  /** What the principal of a revoke reads: both halves, both records' lists, and every role's list. */
  asPrincipal?: { halves: [Read, Read]; lists: (Read & { items?: unknown[] })[] };
  /** Lists an administrator reads (a delete's two records, a conflict's requesting record, a cascaded record). */
  lists?: (Read & { items?: unknown[]; record: string })[];
}

export interface Op {
  seq: number;
  client: string;
  kind: OpKind;
  /** The connection the operation addresses (for a create: the one it asks for). */
  ref?: ConnectionRef;
  /** Which half's URL the request used. */
  side?: Side;
  /** A cascade's record. */
  record?: string;
  /** Grant and revoke: whose share. */
  principal?: string;
  mask?: number;
  /** A description no other request sets, so its effect can be recognised. */
  description?: string;
  /** Requested roles, as seen from the URL's record (a create: record 1's, record 2's). */
  roles?: [string | null, string | null];
  state?: 0 | 1;
  ownerid?: string;
  ifMatch?: string;
  exchange: Exchange;
  /** Read after a 2xx answer. */
  after?: Observation;
  /** Read after a 409 ConnectionExists: the requesting record's connections with the other record. */
  conflict?: Observation;
}

/** Everything the clients sent and saw, in one process; connections are known by both half ids. */
export class History {
  readonly ops: Op[] = [];
  readonly refs = new Map<string, ConnectionRef>();
  private readonly byConnection = new Map<string, Op[]>();
  private readonly cascades: Op[] = [];
  private next = 0;

  add(op: Omit<Op, 'seq'>): Op {
    const recorded: Op = { ...op, seq: this.next++ };
    this.ops.push(recorded);
    if (recorded.kind === 'cascade') this.cascades.push(recorded);
    if (recorded.ref) {
      if (recorded.kind === 'create') this.register(recorded.ref);
      const list = this.byConnection.get(recorded.ref.id) ?? [];
      list.push(recorded);
      this.byConnection.set(recorded.ref.id, list);
    }
    return recorded;
  }

  register(ref: ConnectionRef): void {
    this.refs.set(ref.id, ref);
    this.refs.set(ref.relatedId, ref);
  }

  /** A create's answer names the related id: the test follows it rather than assuming how it is derived. */
  learnRelatedId(ref: ConnectionRef, relatedId: string): void {
    if (relatedId === ref.relatedId) return;
    this.refs.delete(ref.relatedId);
    ref.relatedId = relatedId;
    this.register(ref);
  }

  refOf(halfId: string): ConnectionRef | undefined {
    return this.refs.get(halfId);
  }

  /**
   * A half read from the API names the half it relates to: where one of the two ids is known and the other
   * is not (a create that never answered, if the related id were derived otherwise), the other becomes known too.
   */
  learnIds(connectionid: string, relatedconnectionid: string): void {
    const ref = this.refs.get(connectionid) ?? this.refs.get(relatedconnectionid);
    if (!ref) return;
    const unknown = this.refs.has(connectionid) ? relatedconnectionid : connectionid;
    if (this.refs.has(unknown)) return;
    if (unknown !== ref.id && unknown !== ref.relatedId) this.learnRelatedId(ref, unknown);
  }

  connections(): ConnectionRef[] {
    return [...new Set(this.refs.values())];
  }

  /** Operations addressed to the connection, and cascades of either of its records. */
  touching(ref: ConnectionRef): Op[] {
    return [
      ...(this.byConnection.get(ref.id) ?? []),
      ...this.cascades.filter((op) => op.record === ref.record1 || op.record === ref.record2),
    ];
  }
}

/** A ref for a create request: the related id as the protocol derives it (reciprocalIdOf), corrected by the answer. */
export const newRef = (id: string, record1: string, record2: string): ConnectionRef => ({
  id,
  relatedId: reciprocalIdOf(id),
  record1,
  record2,
});

export const started = (op: Op): number => op.exchange.attempts[0]?.start ?? Number.POSITIVE_INFINITY;
export const ended = (op: Op): number => lastAttempt(op.exchange)?.end ?? Number.POSITIVE_INFINITY;

import { randomUUID } from 'node:crypto';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { principal, startApi, type TestApi } from '../support/http';

/**
 * The local host at the level of the wire: what a client gets for requests the route table never sees
 * (a malformed Host header or request line), and a kept-alive connection after an oversized body.
 */
let api: TestApi;
let port = 0;
const caller = principal('0b000000-0000-4000-8000-00000000000b');

beforeAll(async () => {
  api = await startApi();
  port = Number(new URL(api.baseUrl).port);
});
afterAll(async () => api.close());

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Whether the server closed the connection cleanly (FIN), as opposed to resetting it. */
  closedCleanly: boolean;
}

/** Sends bytes on a fresh socket and reads the first answer (Content-Length framed). */
function raw(text: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    let received = Buffer.alloc(0);
    let answer: Omit<RawAnswer, 'closedCleanly'> | undefined;
    const parse = () => {
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine = '', ...lines] = received.subarray(0, end).toString('latin1').split('\r\n');
      const headers = Object.fromEntries(
        lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
      );
      const length = Number(headers['content-length'] ?? 0);
      if (received.length < end + 4 + length) return;
      answer = {
        status: Number(statusLine.split(' ')[1]),
        headers,
        body: received.subarray(end + 4, end + 4 + length).toString('utf8'),
      };
      if (!/close/i.test(headers.connection ?? '')) {
        socket.end();
      }
    };
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (!answer) parse();
    });
    socket.on('error', (error) => (answer ? resolve({ ...answer, closedCleanly: false }) : reject(error)));
    socket.on('end', () =>
      answer
        ? resolve({ ...answer, closedCleanly: true })
        : reject(new Error(`no answer: ${received.toString('latin1')}`)),
    );
    socket.setTimeout(10_000, () => socket.destroy(new Error('timed out')));
  });
}

const expectProblem = (answer: RawAnswer, status: number) => {
  expect(answer.status, answer.body).toBe(status);
  expect(answer.headers['content-type']).toContain('application/problem+json');
  expect(JSON.parse(answer.body)).toMatchObject({ status, code: expect.any(String), detail: expect.any(String) });
};

describe('a malformed Host header or request', () => {
  it('is a 400 problem, never a 500', async () => {
    for (const host of ['a b', '[', ':::', 'a:99999', 'a@b', 'a/b', '']) {
      expectProblem(await raw(`GET /api/health HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`), 400);
      expectProblem(
        await raw(
          `GET /api/objecttypes HTTP/1.1\r\nHost: ${host}\r\nx-ms-client-principal: ${caller['x-ms-client-principal']}\r\nConnection: close\r\n\r\n`,
        ),
        400,
      );
    }
    expectProblem(await raw('GET /api/health HTTP/1.1\r\nConnection: close\r\n\r\n'), 400);
    expectProblem(await raw('NOT HTTP AT ALL\r\n\r\n'), 400);
    // A well-formed one still works, with a port or an IPv6 literal.
    for (const host of [`127.0.0.1:${port}`, 'localhost', '[::1]:7071']) {
      expect((await raw(`GET /api/health HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)).status, host).toBe(
        200,
      );
    }
  });
});

describe('a kept-alive connection', () => {
  const send = (
    agent: Agent,
    body: string,
    type = 'application/json',
  ): Promise<{ status: number; type: string; connection: string; text: string }> =>
    new Promise((resolve, reject) => {
      const outgoing = request(
        {
          host: '127.0.0.1',
          port,
          path: '/api/connections',
          method: 'POST',
          agent,
          headers: { ...caller, 'content-type': type, 'content-length': Buffer.byteLength(body) },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () =>
            resolve({
              status: response.statusCode ?? 0,
              type: String(response.headers['content-type']),
              connection: String(response.headers.connection),
              text: Buffer.concat(chunks).toString('utf8'),
            }),
          );
        },
      );
      outgoing.on('error', reject);
      outgoing.end(body);
    });

  it('keeps working after a 413: the oversized request is answered, then closed cleanly, and the next request succeeds', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const valid = () =>
        JSON.stringify({
          record1id: randomUUID(),
          record1objecttypecode: 'account',
          record2id: randomUUID(),
          record2objecttypecode: 'contact',
        });
      expect((await send(agent, valid())).status).toBe(201);
      for (let round = 0; round < 3; round++) {
        const tooLarge = await send(agent, JSON.stringify({ description: 'x'.repeat(3 * 1024 * 1024) }));
        expect(tooLarge.status).toBe(413);
        expect(tooLarge.type).toContain('application/problem+json');
        expect(tooLarge.connection).toBe('close');
        expect((await send(agent, '{"record1id": ')).status).toBe(400);
        expect((await send(agent, valid())).status).toBe(201);
      }
    } finally {
      agent.destroy();
    }
  });

  it('is closed with a FIN, not a reset, after a 413 whose body was sent in full', async () => {
    const body = 'x'.repeat(3 * 1024 * 1024);
    const answer = await raw(
      `POST /api/connections HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nx-ms-client-principal: ${caller['x-ms-client-principal']}\r\n\r\n${body}`,
    );
    expectProblem(answer, 413);
    expect(answer.headers.connection).toBe('close');
    expect(answer.closedCleanly).toBe(true);
  });
});

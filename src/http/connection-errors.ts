/**
 * Answers on a connection where no request came to be: HTTP the parser refuses, a request line and
 * headers past the size limit, a request that did not arrive in time, a CONNECT. Node and Fastify
 * would answer these with their own JSON or an empty body; here each is a problem document with a
 * code from the closed list and a request id, like every other error, and the connection is closed.
 */
import type { Server } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import { ERROR_CODES, type ErrorCode } from '../errors.js';
import { newId } from '../lib/ids.js';
import { problemDocument } from './problem.js';

/** How long a closed connection's answer may take to drain before the socket is dropped. */
const DRAIN_MS = 1000;

export interface ConnectionLimits {
  maxHeaderBytes: number;
  requestTimeoutMs: number;
}

/** The code and the detail for an error Node raised on a connection before a request reached the app. */
export function connectionProblem(
  error: NodeJS.ErrnoException,
  limits: ConnectionLimits,
): { code: ErrorCode; detail: string } {
  switch (error.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return {
        code: 'request_timeout',
        detail: `the request line, headers and body must arrive within ${limits.requestTimeoutMs} ms`,
      };
    case 'HPE_HEADER_OVERFLOW':
      return {
        code: 'request_header_too_large',
        detail: `the request line and headers must not exceed ${limits.maxHeaderBytes} bytes`,
      };
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return { code: 'payload_too_large', detail: 'the chunk extensions are too large' };
    default:
      // The parser's own reason is not echoed: one fixed text for every malformed request.
      return { code: 'malformed_request', detail: 'the request is not well-formed HTTP/1.1' };
  }
}

/**
 * Writes `code` as a complete HTTP/1.1 answer straight onto the socket and closes it. Only where no
 * answer has begun on it: bytes after a started response would corrupt what the client reads.
 */
export function answerOnSocket(socket: Duplex, code: ErrorCode, detail: string): void {
  const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  if (!socket.writable || socket.writableEnded || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const requestId = newId('request');
  const status = ERROR_CODES[code].status;
  const body = JSON.stringify(problemDocument(code, requestId, detail));
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
      'Content-Type: application/problem+json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      `X-Request-Id: ${requestId}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
  // A client that neither reads nor closes must not keep the socket: it goes once the answer had its chance.
  setTimeout(() => socket.destroy(), DRAIN_MS).unref();
}

/** Fastify's clientErrorHandler: every connection-level refusal as a problem document. */
export function clientErrorHandler(limits: ConnectionLimits, log: () => FastifyBaseLogger) {
  return (error: NodeJS.ErrnoException, socket: Duplex): void => {
    // A reset connection has nobody left to answer.
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const { code, detail } = connectionProblem(error, limits);
    // Not the error itself: Node attaches the raw bytes received (rawPacket), Authorization included.
    log().debug({ code, reason: error.code }, 'refused on the connection');
    answerOnSocket(socket, code, detail);
  };
}

/**
 * Node's own answers that would not be problem documents: CONNECT (no route serves a tunnel; Node
 * would drop the socket without a word) and an Expect other than 100-continue (Node's bare 417; an
 * unknown expectation may be ignored, RFC 9110 10.1.1, so the request is served as if it had none).
 */
export function answerNodeLevelRequests(server: Server): void {
  server.on('connect', (_request, socket: Duplex) =>
    answerOnSocket(socket, 'not_found', 'CONNECT is not served'),
  );
  server.on('checkExpectation', (request, response) => server.emit('request', request, response));
}

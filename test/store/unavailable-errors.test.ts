/**
 * Which database failures read as "the database is unavailable" (503, retry) and which mean the
 * connection itself must be thrown away. A wrong answer either way is visible: a lost connection
 * answered 500, a constraint violation answered 503 (and retried forever), or a broken connection
 * handed to the next request.
 */
import { describe, expect, it } from 'vitest';
import { DatabaseUnavailableError, isConnectionLost, isDatabaseUnavailable } from '../../src/store/errors.js';

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('database availability errors', () => {
  it.each([
    ['refused', withCode('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432')],
    ['reset', withCode('ECONNRESET', 'read ECONNRESET')],
    ['admin shutdown', withCode('57P01', 'terminating connection due to administrator command')],
    ['crash shutdown', withCode('57P02')],
    ['starting up', withCode('57P03', 'the database system is starting up')],
    ['connection exception class 08', withCode('08006')],
    ['terminated', new Error('Connection terminated unexpectedly')],
    ['connect timeout', new Error('Connection terminated due to connection timeout')],
    ['query timeout', new Error('Query read timeout')],
    ['a broken client', new DatabaseUnavailableError('the database connection was lost')],
    ['every address refused', new AggregateError([withCode('ECONNREFUSED'), withCode('ECONNREFUSED')])],
  ])('%s: the connection is lost and the request answers 503', (_name, err) => {
    expect(isConnectionLost(err)).toBe(true);
    expect(isDatabaseUnavailable(err)).toBe(true);
  });

  it.each([
    ['statement timeout', withCode('57014', 'canceling statement due to statement timeout')],
    ['too many connections', withCode('53300')],
    ['no free pooled connection', new Error('timeout exceeded when trying to connect')],
  ])('%s: 503, and the connection is kept', (_name, err) => {
    expect(isDatabaseUnavailable(err)).toBe(true);
    expect(isConnectionLost(err)).toBe(false);
  });

  it.each([
    ['unique violation', withCode('23505')],
    ['serialization failure', withCode('40001')],
    ['syntax error', withCode('42601')],
    ['a plain bug', new TypeError('cannot read properties of undefined')],
    ['not an error', 'ECONNREFUSED'],
  ])('%s: not an outage', (_name, err) => {
    expect(isDatabaseUnavailable(err)).toBe(false);
    expect(isConnectionLost(err)).toBe(false);
  });
});

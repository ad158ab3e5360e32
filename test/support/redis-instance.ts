/**
 * A Redis server of a test's own (a child process, nothing written to disk), on a port of its own,
 * that the test may stop and start again. Never the shared server (6379).
 */
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { serverProcess } from './server-process.js';

export function redisServerAvailable(): boolean {
  return spawnSync('redis-server', ['--version']).status === 0;
}

export interface RedisInstance {
  port: number;
  url: string;
  /** Kills the server (SIGKILL: connections drop at once, as in a crash). */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
  destroy(): Promise<void>;
}

async function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.write('PING\r\n');
    });
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString().startsWith('+PONG'));
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startRedis(port: number): Promise<RedisInstance> {
  const { start, stop } = serverProcess(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'],
    port,
    answers,
  );
  await start();
  return { port, url: `redis://127.0.0.1:${port}`, stop, start, destroy: stop };
}

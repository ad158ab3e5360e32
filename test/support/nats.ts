/**
 * NATS for the event-stream suites. TEST_NATS_URL names the shared server (JetStream on); each test
 * file uses a stream name and subject prefix of its own, deleted again after, so files never see each
 * other's events. Under CI the NATS suite is mandatory: a missing TEST_NATS_URL fails the import.
 *
 * `startNats(port)` runs a server of the test's own (a child process with a JetStream store in a
 * temporary folder) that the test may stop and start again with the same store, as in an outage.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { serverProcess } from './server-process.js';

const EXAMPLE_URL = 'nats://127.0.0.1:4222';

export const testNatsUrl = process.env['TEST_NATS_URL'] || undefined;
const inCi = ['true', '1'].includes((process.env['CI'] ?? '').toLowerCase());

if (!testNatsUrl) {
  if (inCi) {
    throw new Error(
      `TEST_NATS_URL is not set, but CI requires the NATS suite. Set it, e.g. TEST_NATS_URL=${EXAMPLE_URL}`,
    );
  }
  const noticeKey = Symbol.for('promoguard.test.natsSkippedNotice');
  const registry = globalThis as Record<symbol, unknown>;
  if (!registry[noticeKey]) {
    registry[noticeKey] = true;
    process.stderr.write(
      `NATS suite skipped: TEST_NATS_URL is not set (set TEST_NATS_URL=${EXAMPLE_URL} to run it).\n`,
    );
  }
}

/** A stream name and subject prefix no other test file uses, as the app's NATS_* variables. */
export function uniqueStream(tag: string): { NATS_STREAM: string; NATS_SUBJECT_PREFIX: string } {
  const id = randomBytes(5).toString('hex');
  return { NATS_STREAM: `TEST_${tag}_${id}`.toUpperCase(), NATS_SUBJECT_PREFIX: `test.${tag}.${id}` };
}

/** Delete a test's stream (and its consumers) from a server. */
export async function deleteStream(url: string, stream: string): Promise<void> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(stream).catch(() => {});
  } finally {
    await nc.close();
  }
}

export function natsServerAvailable(): boolean {
  return spawnSync('nats-server', ['--version']).status === 0;
}

export interface NatsInstance {
  url: string;
  /** Kills the server (SIGKILL: connections drop at once, as in a crash); its store stays. */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same store. */
  start(): Promise<void>;
  destroy(): Promise<void>;
}

async function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ port, host: '127.0.0.1' });
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString().startsWith('INFO'));
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startNats(port: number): Promise<NatsInstance> {
  const store = await mkdtemp(path.join(tmpdir(), 'promoguard-nats-'));
  const { start, stop } = serverProcess(
    'nats-server',
    ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', store],
    port,
    listening,
  );
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    stop,
    start,
    async destroy() {
      await stop();
      await rm(store, { recursive: true, force: true });
    },
  };
}

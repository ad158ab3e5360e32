/**
 * A server a test starts and stops itself (its own Redis, NATS, … on a port of its own): spawned, and
 * waited for until it answers on its port; stopped with SIGKILL, as an outage would stop it.
 */
import { type ChildProcess, spawn } from 'node:child_process';

export interface ServerProcess {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * `answers(port)` tells when the server is up (a greeting or a ping, not just an open port).
 * start() after stop() starts it again with the same arguments (and so the same data folder).
 */
export function serverProcess(
  command: string,
  args: readonly string[],
  port: number,
  answers: (port: number) => Promise<boolean>,
): ServerProcess {
  let child: ChildProcess | null = null;
  return {
    async start() {
      const started = spawn(command, [...args], { stdio: 'ignore' });
      child = started;
      const deadline = Date.now() + 10_000;
      while (!(await answers(port))) {
        if (started.exitCode !== null)
          throw new Error(`${command} on ${port} exited with ${started.exitCode}`);
        if (Date.now() > deadline) throw new Error(`${command} on ${port} did not answer`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    async stop() {
      const running = child;
      child = null;
      if (!running || running.exitCode !== null) return;
      const exited = new Promise((resolve) => running.once('exit', resolve));
      running.kill('SIGKILL');
      await exited;
    },
  };
}

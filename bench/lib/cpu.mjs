/**
 * Where the CPU went during a load: the whole host (/proc/stat), the server process, the bench process
 * itself (the load generator or the limit's driver) and, on PostgreSQL, the backends serving the bench
 * database. On a 2-core machine that hosts all three, these explain a ratio better than any guess.
 */
import { readFileSync } from 'node:fs';
import { readCpuSeconds } from './server.mjs';

/** The host's CPU ticks (/proc/stat): idle, in all, and stolen by the hypervisor. */
export function hostTicks() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { idle, total, steal: v[7] ?? 0 };
}

function safeCpu(pid) {
  try {
    return readCpuSeconds(pid);
  } catch {
    return null;
  }
}

/**
 * `backendPids()` (optional) lists the PostgreSQL backends of the bench database. They are polled
 * while the load runs, so backends that connect and leave during it (pgbench's) are counted too; a
 * backend first seen during the load counts from zero (before that it only connected).
 */
export async function startCpuMeter({ serverPid, backendPids, pollMs = 250 }) {
  const t0 = performance.now();
  const host0 = hostTicks();
  const self0 = process.cpuUsage();
  const server0 = serverPid ? safeCpu(serverPid) : null;
  const first = new Map();
  const last = new Map();
  const poll = async (initial) => {
    if (!backendPids) return;
    for (const pid of await backendPids()) {
      const now = safeCpu(pid);
      if (now === null) continue;
      if (!first.has(pid)) first.set(pid, initial ? now : 0);
      last.set(pid, now);
    }
  };
  await poll(true);
  let polling = Promise.resolve();
  const timer = setInterval(() => {
    polling = polling.then(() => poll(false)).catch(() => {});
  }, pollMs);
  return {
    async stop() {
      clearInterval(timer);
      await polling;
      await poll(false).catch(() => {});
      const seconds = (performance.now() - t0) / 1000;
      const host1 = hostTicks();
      const self1 = process.cpuUsage(self0);
      let backends = null;
      if (backendPids) {
        backends = 0;
        for (const [pid, now] of last) backends += now - (first.get(pid) ?? 0);
      }
      const server1 = serverPid ? safeCpu(serverPid) : null;
      const totalTicks = host1.total - host0.total;
      return {
        seconds,
        // Busy share of all cores of the host (others' work included: the machine is shared).
        hostBusy: totalTicks > 0 ? 1 - (host1.idle - host0.idle) / totalTicks : null,
        // Share the hypervisor gave to other guests (part of hostBusy): on a shared host a load that
        // lost a third of its CPU runs a third slower, whatever the code did.
        hostSteal: totalTicks > 0 ? (host1.steal - host0.steal) / totalTicks : null,
        // CPU seconds used during the load.
        server: server0 !== null && server1 !== null ? server1 - server0 : null,
        bench: (self1.user + self1.system) / 1e6,
        postgres: backends,
      };
    },
  };
}

/** CPU milliseconds per completed operation, by consumer. */
export function cpuPerOp(cpu, ops) {
  if (!cpu || !ops) return null;
  const per = (s) => (s === null || s === undefined ? null : Math.round((s * 1e6) / ops) / 1e3);
  return { server: per(cpu.server), bench: per(cpu.bench), postgres: per(cpu.postgres) };
}

/**
 * The server under test: `bin/promoguard.js serve` as a child process, started as `npm start` starts
 * it (the same node flags, read from package.json), with a clean environment (only what the bench
 * sets, so every defense keeps its default). Its memory is read from /proc/<pid>/status while loads run.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;

/**
 * The node flags of `npm start` (its script is `node <flags> bin/promoguard.js serve`) in the checkout
 * at `root`: the server is measured as it is run, young-generation size included.
 */
export function startNodeFlags(root = ROOT) {
  const script = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).scripts.start;
  const match = /^node((?: --[\w-]+(?:=\S+)?)*) bin\/promoguard\.js serve$/.exec(script);
  if (!match) throw new Error(`bench: cannot read the node flags of the start script: ${script}`);
  return match[1].split(' ').filter(Boolean);
}

export const START_NODE_FLAGS = startNodeFlags();

/** Variables passed through from the bench's own environment; everything else is set explicitly. */
const PASS_THROUGH = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ'];

/**
 * Start the server; resolves once it listens. `env` is added to a clean environment; `nodeArgs` go to
 * node itself (e.g. --cpu-prof when looking for where the time goes); `root` is the checkout to run
 * (another build, for a comparison), this one by default.
 * Returns { pid, url, adminKey (first start only), log, stop() }.
 */
export async function startServer(env, { nodeArgs = [], root = ROOT } = {}) {
  // Approvals gate campaign changes, never a redemption: the bench's uncapped setup campaigns skip them.
  const childEnv = { HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', APPROVALS: 'off' };
  for (const name of PASS_THROUGH) if (process.env[name] !== undefined) childEnv[name] = process.env[name];
  Object.assign(childEnv, env);
  const args = [...startNodeFlags(root), ...nodeArgs, path.join(root, 'bin', 'promoguard.js'), 'serve'];
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = new ServerLog();
  let adminKey = null;
  let exited = null;
  const listening = new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error('server did not start listening in time')),
      START_TIMEOUT_MS,
    );
    const onLine = (line) => {
      // The first start prints the admin key once, on a line of its own; it is kept in memory only.
      const key = /^\s*(pgk_[A-Za-z0-9_-]+)\s*$/.exec(line);
      if (key) {
        adminKey = key[1];
        return;
      }
      const entry = log.add(line);
      if (entry && typeof entry.address === 'string' && /listening/.test(String(entry.msg))) {
        clearTimeout(timer);
        resolve(entry.address);
      }
    };
    lines(child.stdout, onLine);
    lines(child.stderr, onLine);
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      clearTimeout(timer);
      reject(new Error(`server exited before listening (${code ?? signal}):\n${log.tail()}`));
    });
  });
  const url = await listening;
  return {
    pid: child.pid,
    url,
    adminKey,
    log,
    exited: () => exited,
    async stop() {
      if (exited) return exited;
      const done = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      const result = await done;
      clearTimeout(timer);
      return result;
    },
  };
}

function lines(stream, onLine) {
  let buffered = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    buffered += chunk;
    let nl = buffered.indexOf('\n');
    while (nl >= 0) {
      onLine(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
      nl = buffered.indexOf('\n');
    }
  });
}

/** Counts the server's log lines by level, and keeps the last few error lines for the report. */
class ServerLog {
  constructor() {
    this.errors = 0;
    this.warnings = 0;
    this.recent = [];
    this.lastErrors = [];
  }

  add(line) {
    this.recent.push(line);
    if (this.recent.length > 50) this.recent.shift();
    let entry = null;
    try {
      entry = JSON.parse(line);
    } catch {
      // Not a log line (the admin-key banner, a stack trace on stderr): counted as an error if on stderr.
      if (/error/i.test(line)) this.#error(line);
      return null;
    }
    if (typeof entry.level === 'number' && entry.level >= 50) this.#error(line);
    else if (entry.level === 40) this.warnings++;
    return entry;
  }

  #error(line) {
    this.errors++;
    this.lastErrors.push(line.slice(0, 400));
    if (this.lastErrors.length > 5) this.lastErrors.shift();
  }

  tail() {
    return this.recent.slice(-20).join('\n');
  }
}

/** CPU time (user + system) a process has used so far, in seconds. */
export function readCpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** Linux reports CPU time in clock ticks of 1/100 s on every platform Node supports. */
const CLOCK_TICKS = 100;

/** Reads VmRSS and VmHWM (peak) of a process, in bytes. */
export function readMemory(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
    return m ? Number(m[1]) * 1024 : null;
  };
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/**
 * Samples a process's RSS every `intervalMs` while a load runs. The kernel's peak (VmHWM) is reset
 * first where allowed (writing 5 to clear_refs), so the peak belongs to this load, not to setup; the
 * sampled maximum is kept too, as a cross-check that needs no privilege.
 */
export function sampleMemory(pid, intervalMs = 100) {
  let hwmReset = false;
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    hwmReset = true;
  } catch {
    // Not permitted: VmHWM then is the peak since the process started.
  }
  const start = readMemory(pid);
  const startCpu = readCpuSeconds(pid);
  const startedAt = performance.now();
  let maxRss = start.rss ?? 0;
  let samples = 0;
  const timer = setInterval(() => {
    try {
      const { rss } = readMemory(pid);
      if (rss !== null && rss > maxRss) maxRss = rss;
      samples++;
    } catch {
      clearInterval(timer);
    }
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      let end = { rss: null, hwm: null };
      let cpu = null;
      try {
        end = readMemory(pid);
        cpu = (readCpuSeconds(pid) - startCpu) / ((performance.now() - startedAt) / 1000);
      } catch {
        // The process is gone; keep what was sampled.
      }
      if (end.rss !== null && end.rss > maxRss) maxRss = end.rss;
      return {
        startRss: start.rss,
        endRss: end.rss,
        sampledPeakRss: maxRss,
        hwm: end.hwm,
        hwmReset,
        // The figure reported: the kernel's peak when it was reset for this load, else the sampled peak.
        peakRss: hwmReset && end.hwm !== null ? Math.max(end.hwm, maxRss) : maxRss,
        samples,
        // Share of one core the server used during the load (1.0 = one core busy all the time).
        cpu,
      };
    },
  };
}

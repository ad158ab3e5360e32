/**
 * HTTP loads with autocannon on loopback. Every request gets its own body from `makeBody(seq)`
 * (distinct customer, client address, order and Idempotency-Key), so the defenses run with their
 * real defaults and no caller is rate-limited for being the load generator. Latency is taken from
 * every response but each connection's first (autocannon's own histogram has 1 ms steps and keeps
 * only 2xx), and non-2xx answers are counted by status, problem `code` and refusal `reason`.
 */
import autocannon from 'autocannon';
import { LatencyRecorder } from './stats.mjs';

/**
 * `makeBody(seq)` returns { body, idempotencyKey? } or null when its pool is used up (the run then
 * stops early and says so). `overallRate` turns the closed loop into autocannon's fixed-rate mode.
 */
export async function httpLoad({
  url,
  key,
  path,
  connections,
  durationSec,
  overallRate,
  makeBody,
  okStatus,
  keepSamples = false,
}) {
  const target = new URL(url);
  const all = new LatencyRecorder();
  const ok = new LatencyRecorder();
  /** The first answer on each connection (any status), and the connections that had theirs. */
  const first = new LatencyRecorder();
  const answered = new WeakSet();
  const problems = {};
  let seq = 0;
  let exhausted = false;
  let instance;
  const request = {
    method: 'POST',
    path,
    setupRequest(req) {
      const next = exhausted ? null : makeBody(seq++);
      if (!next) {
        // autocannon cannot skip a request: send a harmless one and stop the run.
        if (!exhausted) {
          exhausted = true;
          setImmediate(() => instance?.stop());
        }
        return { ...req, method: 'GET', path: '/healthz', headers: {}, body: undefined };
      }
      const headers = { 'content-type': 'application/json', authorization: `Bearer ${key}` };
      if (next.idempotencyKey) headers['idempotency-key'] = next.idempotencyKey;
      return { ...req, headers, body: JSON.stringify(next.body) };
    },
    onResponse(status, body) {
      if (status >= 200 && status < 300) return;
      let code = 'unparsed';
      try {
        const problem = JSON.parse(body);
        code = problem.reason ? `${problem.code}:${problem.reason}` : String(problem.code);
      } catch {
        // Not problem+json (a proxy or a crash page): counted as unparsed.
      }
      const label = `${status} ${code}`;
      problems[label] = (problems[label] ?? 0) + 1;
    },
  };
  const started = performance.now();
  const result = await new Promise((resolve, reject) => {
    instance = autocannon(
      {
        url: target.origin,
        connections,
        duration: durationSec,
        ...(overallRate ? { overallRate } : {}),
        timeout: 10,
        requests: [request],
      },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
    instance.on('response', (client, statusCode, _bytes, responseTime) => {
      // A connection's first answer also waited for the server to accept the connection: under load
      // Node accepts one new connection per event-loop turn (libuv), so the last of a load's fresh
      // connections waits a turn per connection before it. Recorded apart, not as redemption latency.
      if (!answered.has(client)) {
        answered.add(client);
        first.record(responseTime);
        return;
      }
      all.record(responseTime);
      if (statusCode === okStatus) ok.record(responseTime);
    });
  });
  const elapsedSec = (performance.now() - started) / 1000;
  const statusCounts = {};
  for (const [status, { count }] of Object.entries(result.statusCodeStats ?? {})) {
    statusCounts[status] = Number(count);
  }
  const okCount = statusCounts[String(okStatus)] ?? 0;
  return {
    durationSec: Math.round(elapsedSec * 1000) / 1000,
    connections,
    overallRate: overallRate ?? null,
    built: seq,
    responses: Object.values(statusCounts).reduce((a, b) => a + b, 0),
    ok: okCount,
    rate: okCount / elapsedSec,
    allRate: Object.values(statusCounts).reduce((a, b) => a + b, 0) / elapsedSec,
    statusCounts,
    problems,
    socketErrors: result.errors,
    timeouts: result.timeouts,
    exhausted,
    latencyOk: ok.summary(),
    latencyAll: all.summary(),
    latencyFirst: first.summary(),
    // Every successful answer's latency (ms), to pool loads: `npm run bench:compare`.
    ...(keepSamples ? { samplesOk: ok.values.slice(0, ok.count) } : {}),
  };
}

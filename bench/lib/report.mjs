/** Medians over repeats, the verdict per target, and the printed report. */
import { fmt, median } from './stats.mjs';

export const TARGETS = {
  spreadRatio: 0.5,
  hotRatio: 0.6,
  validationP99Ms: 5,
  rssBytes: 200 * 1024 * 1024,
};

const max = (xs) => {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x));
  return v.length ? Math.max(...v) : null;
};
const ratio = (a, b) => (a && b ? a / b : null);

function redemptionSummary(reps, http, limit, pgbench) {
  const med = (f) => median(reps.map((r) => f(r)));
  return {
    http: med((r) => r[http]?.rate),
    limit: med((r) => r[limit]?.rate),
    pgbench: med((r) => r[pgbench]?.tps),
    // Median of the per-repeat ratios: each pairs two figures measured minutes apart, not hours.
    ratio: med((r) => ratio(r[http]?.rate, r[limit]?.rate)),
    ratioPgbench: med((r) => ratio(r[http]?.rate, r[pgbench]?.tps)),
    p50: med((r) => r[http]?.latencyOk.p50),
    p99: med((r) => r[http]?.latencyOk.p99),
    firstMax: med((r) => r[http]?.latencyFirst?.max),
    limitP50: med((r) => r[limit]?.latency.p50),
    limitP99: med((r) => r[limit]?.latency.p99),
    pgbenchRedeemMs: med((r) => r[pgbench]?.redeemLatencyMs),
    rss: max(reps.map((r) => r[http]?.memory?.peakRss)),
    cpu: {
      server: med((r) => r[http]?.cpuPerOp?.server),
      postgres: med((r) => r[http]?.cpuPerOp?.postgres),
      generator: med((r) => r[http]?.cpuPerOp?.bench),
      hostBusy: med((r) => r[http]?.cpu?.hostBusy),
      hostSteal: med((r) => r[http]?.cpu?.hostSteal),
    },
    limitCpu: {
      postgres: med((r) => r[limit]?.cpuPerOp?.postgres),
      driver: med((r) => r[limit]?.cpuPerOp?.bench),
      hostBusy: med((r) => r[limit]?.cpu?.hostBusy),
      hostSteal: med((r) => r[limit]?.cpu?.hostSteal),
    },
    pgbenchCpu: {
      postgres: med((r) => r[pgbench]?.cpuPerOp?.postgres),
      hostBusy: med((r) => r[pgbench]?.cpu?.hostBusy),
      hostSteal: med((r) => r[pgbench]?.cpu?.hostSteal),
    },
    notOk: reps.reduce((n, r) => n + ((r[http]?.responses ?? 0) - (r[http]?.ok ?? 0)), 0),
    problems: mergeCounts(reps.map((r) => r[http]?.problems)),
    limitErrors: mergeCounts(reps.map((r) => r[limit]?.errors)),
    limitRefusals: mergeCounts(
      reps.map((r) =>
        Object.fromEntries(Object.entries(r[limit]?.outcomes ?? {}).filter(([k]) => k !== 'redeemed')),
      ),
    ),
    pgbenchFailures: reps.reduce(
      (n, r) => n + (r[pgbench]?.failed ?? 0) + (r[pgbench]?.abortedClients ?? 0),
      0,
    ),
    // Transactions pgbench counted whose redeem did not redeem (a refusal is an answer, not an error).
    pgbenchNotRedeemed: reps.reduce(
      (n, r) =>
        n + (r[pgbench] ? Math.max(0, (r[pgbench].transactions ?? 0) - (r[pgbench].redeemed ?? 0)) : 0),
      0,
    ),
    exhausted: reps.some((r) => r[http]?.exhausted || r[limit]?.exhausted),
  };
}

function mergeCounts(list) {
  const out = {};
  for (const counts of list) {
    for (const [k, v] of Object.entries(counts ?? {})) out[k] = (out[k] ?? 0) + v;
  }
  return out;
}

export function summarizeBackend(out) {
  const reps = out.repeats;
  const med = (f) => median(reps.map((r) => f(r)));
  const loads = ['httpSpread', 'httpHot', 'validations', 'hot64'];
  return {
    spread: redemptionSummary(reps, 'httpSpread', 'limitSpread', 'pgbenchSpread'),
    hot: redemptionSummary(reps, 'httpHot', 'limitHot', 'pgbenchHot'),
    validations: {
      rate: med((r) => r.validations?.allRate),
      p50: med((r) => r.validations?.latencyAll.p50),
      p90: med((r) => r.validations?.latencyAll.p90),
      p99: med((r) => r.validations?.latencyAll.p99),
      rss: max(reps.map((r) => r.validations?.memory?.peakRss)),
      valid: reps.reduce((n, r) => n + (r.validations?.ok ?? 0), 0),
      problems: mergeCounts(reps.map((r) => r.validations?.problems)),
      cpu: {
        server: med((r) => r.validations?.cpuPerOp?.server),
        postgres: med((r) => r.validations?.cpuPerOp?.postgres),
        generator: med((r) => r.validations?.cpuPerOp?.bench),
        hostBusy: med((r) => r.validations?.cpu?.hostBusy),
        hostSteal: med((r) => r.validations?.cpu?.hostSteal),
      },
    },
    hot64: {
      clean: reps.every((r) => r.hot64?.clean === true),
      capReached: reps.every((r) => r.hot64?.capReached === true),
      runs: reps.map((r) => ({
        cap: r.hot64?.cap,
        redeemed: r.hot64?.ok,
        redemptionsUsed: r.hot64?.redemptionsUsed,
        statusCounts: r.hot64?.statusCounts,
        problems: r.hot64?.problems,
        unexpected: r.hot64?.unexpected,
        socketErrors: r.hot64?.socketErrors,
        timeouts: r.hot64?.timeouts,
        serverErrors: r.hot64?.serverErrors,
        p99: r.hot64?.latencyAll.p99,
      })),
      rss: max(reps.map((r) => r.hot64?.memory?.peakRss)),
      deadlocks: out.deadlocks,
    },
    rssPeak: max(reps.flatMap((r) => loads.map((l) => r[l]?.memory?.peakRss))),
    rssPeakLoad: (() => {
      let best = null;
      for (const r of reps) {
        for (const l of loads) {
          const v = r[l]?.memory?.peakRss;
          if (v && (!best || v > best.v)) best = { v, l };
        }
      }
      return best?.l ?? null;
    })(),
  };
}

const LOAD_NAMES = {
  httpSpread: 'spread redemptions',
  httpHot: 'hot code redemptions',
  validations: 'validations',
  hot64: 'hot code, many clients',
};

export function verdicts(results, options) {
  const out = [];
  for (const [backend, b] of Object.entries(results.backends)) {
    if (b.status !== 'ran' || !b.summary) continue;
    const s = b.summary;
    const label = backend === 'postgres' ? 'PostgreSQL' : 'PGlite';
    const limitName = backend === 'postgres' ? 'limit(pg)' : 'limit(pglite)';
    out.push({
      backend,
      target: `spread redemptions over HTTP >= ${fmt.pct(TARGETS.spreadRatio)} of the limit`,
      met: s.spread.ratio !== null && s.spread.ratio >= TARGETS.spreadRatio,
      value: s.spread.ratio,
      detail: `${label}: ${fmt.pct(s.spread.ratio)} (${fmt.int(s.spread.http)} rps / ${limitName} ${fmt.int(s.spread.limit)} tps)`,
    });
    out.push({
      backend,
      target: `one hot code over HTTP >= ${fmt.pct(TARGETS.hotRatio)} of the limit`,
      met: s.hot.ratio !== null && s.hot.ratio >= TARGETS.hotRatio,
      value: s.hot.ratio,
      detail: `${label}: ${fmt.pct(s.hot.ratio)} (${fmt.int(s.hot.http)} rps / ${limitName} ${fmt.int(s.hot.limit)} tps)`,
    });
    const rateKept = s.validations.rate !== null && s.validations.rate >= options.validationRate * 0.95;
    out.push({
      backend,
      target: `validation p99 <= ${TARGETS.validationP99Ms} ms at ${fmt.int(options.validationRate)} req/s`,
      met: rateKept && s.validations.p99 !== null && s.validations.p99 <= TARGETS.validationP99Ms,
      value: s.validations.p99,
      detail:
        `${label}: p99 ${fmt.ms(s.validations.p99)} at ${fmt.int(s.validations.rate)} req/s` +
        (rateKept ? '' : ` (the rate of ${fmt.int(options.validationRate)}/s was not reached)`),
    });
    const h = s.hot64;
    const unexpected = mergeCounts(h.runs.map((r) => r.unexpected));
    const socket = h.runs.reduce((n, r) => n + (r.socketErrors ?? 0) + (r.timeouts ?? 0), 0);
    const serverErrors = h.runs.reduce((n, r) => n + (r.serverErrors ?? 0), 0);
    out.push({
      backend,
      target: `hot code under ${options.hotConnections} clients: no errors but cap exhaustion, no deadlocks`,
      met: h.clean && (h.deadlocks === null || h.deadlocks === 0),
      value: { unexpected, socket, serverErrors, deadlocks: h.deadlocks, capReached: h.capReached },
      detail:
        `${label}: ${h.runs.map((r) => `${fmt.int(r.redeemed)} redeemed = cap ${fmt.int(r.cap)}`).join(', ')}; ` +
        `unexpected answers ${Object.keys(unexpected).length ? JSON.stringify(unexpected) : '0'}, ` +
        `socket errors/timeouts ${socket}, server errors ${serverErrors}, deadlocks ${h.deadlocks ?? 'n/a (one session)'}` +
        (h.capReached ? '' : ' (cap not reached in the time: exhaustion untested)'),
    });
    out.push({
      backend,
      target: `server RSS <= ${fmt.mb(TARGETS.rssBytes)} under load`,
      met: s.rssPeak !== null && s.rssPeak <= TARGETS.rssBytes,
      value: s.rssPeak,
      detail: `${label}: peak ${fmt.mb(s.rssPeak)} (${LOAD_NAMES[s.rssPeakLoad] ?? '?'})`,
    });
  }
  return out;
}

const pad = (s, n) => String(s).padEnd(n);
const lpad = (s, n) => String(s).padStart(n);

function redemptionLine(name, s, limitName, hasPgbench) {
  let line =
    `  ${pad(name, 22)} HTTP ${lpad(fmt.int(s.http), 6)} rps  ${limitName} ${lpad(fmt.int(s.limit), 6)} tps  ` +
    `ratio ${lpad(fmt.pct(s.ratio), 4)}`;
  if (hasPgbench) {
    line += `  limit(pgbench) ${lpad(fmt.int(s.pgbench), 6)} tps  ratio ${lpad(fmt.pct(s.ratioPgbench), 4)}`;
  }
  line += `  p50 ${lpad(fmt.ms(s.p50), 8)} p99 ${lpad(fmt.ms(s.p99), 8)}  RSS ${fmt.mb(s.rss)}`;
  return line;
}

const cpu3 = (a, b, c, { hostBusy, hostSteal }) =>
  `${[a, b, c].map((x) => (x === null || x === undefined ? '—' : x.toFixed(2))).join(' / ')} ms (host ${fmt.pct(hostBusy)} busy` +
  `${hostSteal === null || hostSteal === undefined ? '' : `, ${fmt.pct(hostSteal)} stolen`})`;

/** How the server was started (the same for every backend of a run). */
function serverCommand(results) {
  const ran = Object.values(results.backends).find((b) => b.serverEnv);
  return ran?.serverEnv.command ?? 'node bin/promoguard.js serve';
}

export function printReport(results, options, file) {
  const w = (line = '') => process.stdout.write(`${line}\n`);
  const env = results.environment;
  w();
  w(
    `Promoguard bench — ${results.mode} mode: ${options.durationSec} s per load, ${options.repeats} repeat(s)` +
      (options.repeats > 1 ? ', medians (ratios: median of per-repeat ratios)' : ''),
  );
  w(
    `host: ${env.cpus} CPUs (${env.cpuModel}), Node ${env.node}, load average ${env.loadAvgStart.join(' ')} at start, ` +
      `${(env.loadAvgEnd ?? []).join(' ')} at end; commit ${env.commit ?? '?'}`,
  );
  w(
    `server: ${serverCommand(results)}, default defenses (60 attempts a minute per customer and device, ` +
      `300 per client address; lockout after 10 failures, 30 per address${options.redisUrl ? '; Redis limiter' : '; in-memory limiter'}).`,
  );
  w(
    '        Every request carries its own customer, client address (body.context.ip) and Idempotency-Key; ' +
      'no limit was raised.',
  );
  w(
    `loads: ${options.connections} in flight (HTTP connections = limit connections), validations at ` +
      `${fmt.int(options.validationRate)}/s over ${options.validationConnections} connections, hot-code check with ` +
      `${options.hotConnections} clients; loopback only. The spread loads (HTTP and limit) and the validation ` +
      `load each follow an unmeasured ${options.warmupSec} s lead-in (the hot loads follow the spread ones).`,
  );
  w(
    'reading: ratio = HTTP redemptions/s ÷ limit transactions/s, measured back to back in this run with the same ' +
      'number in flight; limit = REDEEM_SQL alone (the statement the service issues), through the pg driver, ' +
      'pgbench or in-process PGlite; p50/p99 = HTTP latency of the successful answers on established ' +
      "connections; RSS = the server's peak " +
      'during that load (/proc VmHWM, reset per load).',
  );
  for (const [backend, b] of Object.entries(results.backends)) {
    w();
    if (b.status !== 'ran') {
      w(`${backend}: ${b.status}${b.reason ? ` (${b.reason})` : ''}${b.error ? ` — ${b.error}` : ''}`);
      continue;
    }
    const s = b.summary;
    const limitName = backend === 'postgres' ? 'limit(pg)' : 'limit(pglite)';
    const hasPgbench = backend === 'postgres' && Boolean(options.pgbench);
    w(
      `${b.version}  (setup ${b.setupSeconds} s, backend total ${b.seconds} s` +
        (b.autovacuum ? `; autovacuum ${b.autovacuum}, hot rows vacuumed before each hot load` : '') +
        ')',
    );
    w(redemptionLine('spread redemptions', s.spread, limitName, hasPgbench));
    w(redemptionLine('hot code redemptions', s.hot, limitName, hasPgbench));
    w(
      `  ${pad(`validations @${fmt.int(options.validationRate)}/s`, 22)} HTTP ${lpad(fmt.int(s.validations.rate), 6)} rps` +
        `  (fixed rate, ${options.validationConnections} connections)  p50 ${fmt.ms(s.validations.p50)} ` +
        `p90 ${fmt.ms(s.validations.p90)} p99 ${fmt.ms(s.validations.p99)}  RSS ${fmt.mb(s.validations.rss)}`,
    );
    for (const [i, run] of s.hot64.runs.entries()) {
      const refused = run.problems?.['422 redemption_refused:campaign_cap_reached'] ?? 0;
      const unexpected = Object.entries(run.unexpected ?? {})
        .map(([k, v]) => `${k} x${fmt.int(v)}`)
        .join(', ');
      w(
        `  ${pad(`hot code, ${options.hotConnections} clients`, 22)} 201 x${fmt.int(run.redeemed)} (cap ${fmt.int(run.cap)}, ` +
          `campaign shows ${fmt.int(run.redemptionsUsed)})  422 cap_reached x${fmt.int(refused)}  ` +
          `other: ${unexpected || 'none'}  socket errors ${run.socketErrors + run.timeouts}  ` +
          `server errors ${run.serverErrors}` +
          (i === 0 ? `  deadlocks ${s.hot64.deadlocks ?? 'n/a (one session)'}` : '') +
          `  RSS ${fmt.mb(s.hot64.rss)}`,
      );
    }
    w(
      `  first answer on each of the ${options.connections} fresh connections of a load: max ` +
        `${fmt.ms(s.spread.firstMax)} spread, ${fmt.ms(s.hot.firstMax)} hot (not in p50/p99: the busy server ` +
        'accepts one new connection per event-loop turn)',
    );
    w(
      `  limit latency: spread p50 ${fmt.ms(s.spread.limitP50)} p99 ${fmt.ms(s.spread.limitP99)}, ` +
        `hot p50 ${fmt.ms(s.hot.limitP50)} p99 ${fmt.ms(s.hot.limitP99)}` +
        (hasPgbench
          ? `; pgbench redeem statement avg ${fmt.ms(s.spread.pgbenchRedeemMs)} spread, ${fmt.ms(s.hot.pgbenchRedeemMs)} hot` +
            ' (pgbench spread adds one primary-key lookup per transaction)'
          : ''),
    );
    w('  CPU per operation, server / postgres backends / load generator:');
    w(
      `    spread HTTP  ${cpu3(s.spread.cpu.server, s.spread.cpu.postgres, s.spread.cpu.generator, s.spread.cpu)}` +
        `   ${limitName} ${cpu3(null, s.spread.limitCpu.postgres, s.spread.limitCpu.driver, s.spread.limitCpu)}`,
    );
    w(
      `    hot HTTP     ${cpu3(s.hot.cpu.server, s.hot.cpu.postgres, s.hot.cpu.generator, s.hot.cpu)}` +
        `   ${limitName} ${cpu3(null, s.hot.limitCpu.postgres, s.hot.limitCpu.driver, s.hot.limitCpu)}`,
    );
    w(
      `    validations  ${cpu3(s.validations.cpu.server, s.validations.cpu.postgres, s.validations.cpu.generator, s.validations.cpu)}`,
    );
    if (backend === 'pglite') {
      w('    (PGlite runs inside the server process, and inside the bench process for the limit.)');
    }
    if (b.fidelity) {
      w(
        b.fidelity.matches
          ? `  ${limitName} drives REDEEM_SQL with the service's own arguments (checked against a captured service call)`
          : `  ! ${limitName} arguments DIFFER from the service's: ${JSON.stringify(b.fidelity.differences)}`,
      );
    }
    const m = b.memory;
    const restarts = b.repeats.map((r) => r.memoryAfterRestart).filter(Boolean);
    w(
      `  server RSS when idle: ${m.afterStart ? `${fmt.mb(m.afterStart)} after start, ` : ''}` +
        `${m.afterFirstStart ? `${fmt.mb(m.afterFirstStart)} after the first start (fresh data folder), ` : ''}` +
        `${fmt.mb(m.afterSetup)} after setup` +
        (restarts.length ? `, ${restarts.map(fmt.mb).join(', ')} after restart` : ''),
    );
    const issues = [];
    for (const [kind, x] of [
      ['spread', s.spread],
      ['hot', s.hot],
    ]) {
      if (x.notOk) issues.push(`${kind} HTTP non-2xx: ${JSON.stringify(x.problems)}`);
      if (Object.keys(x.limitErrors).length)
        issues.push(`${kind} limit errors: ${JSON.stringify(x.limitErrors)}`);
      if (Object.keys(x.limitRefusals).length)
        issues.push(`${kind} limit refusals: ${JSON.stringify(x.limitRefusals)}`);
      if (x.pgbenchFailures)
        issues.push(`${kind} pgbench failed transactions/aborted clients: ${x.pgbenchFailures}`);
      if (x.pgbenchNotRedeemed)
        issues.push(`${kind} pgbench transactions that did not redeem: ${x.pgbenchNotRedeemed}`);
      if (x.exhausted)
        issues.push(`${kind}: the code pool ran out before the end of a load (figures cover less time)`);
    }
    if (Object.keys(s.validations.problems).length)
      issues.push(`validation non-2xx: ${JSON.stringify(s.validations.problems)}`);
    if (b.serverLog?.errors) issues.push(`server logged ${b.serverLog.errors} error line(s)`);
    for (const issue of issues) w(`  ! ${issue}`);
  }
  w();
  w('Targets');
  for (const t of results.targets) {
    w(`  ${pad(t.met ? 'met' : 'NOT MET', 8)} ${t.target} — ${t.detail}`);
  }
  w();
  w(
    `notes: autocannon's fixed rate sends each connection's share of the second back to back, so the validation ` +
      `load arrives in bursts of ${options.validationConnections} concurrent requests; the hot-code check sets the ` +
      `cap to about half of what the hot load would redeem in ${options.durationSec} s, so exhaustion happens mid-run.`,
  );
  w(`results: ${file}`);
}

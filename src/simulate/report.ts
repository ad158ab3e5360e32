/** The scorecard as text tables (stdout) and the whole run as JSON (a file). */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { OperatorAlert, OperatorRemediation } from './operator.js';
import type { OperatorResult, SimulationResult } from './runner.js';
import { latencySummary, type ScenarioRow } from './scorecard.js';

export function money(minor: number): string {
  const sign = minor < 0 ? '-' : '';
  const abs = Math.abs(minor);
  const units = Math.floor(abs / 100)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${sign}$${units}.${String(abs % 100).padStart(2, '0')}`;
}

export function pct(x: number | null): string {
  return x === null ? '-' : `${(x * 100).toFixed(1)}%`;
}

const ms = (x: number | null) => (x === null ? '-' : x < 10 ? x.toFixed(1) : String(Math.round(x)));

interface Column<T> {
  head: string;
  value: (row: T) => string;
  left?: boolean;
}

function table<T>(columns: Column<T>[], rows: T[], footer: T[]): string {
  const cells = [...rows, ...footer].map((r) => columns.map((c) => c.value(r)));
  const widths = columns.map((c, i) =>
    Math.max(c.head.length, ...cells.map((row) => (row[i] as string).length)),
  );
  const line = (values: string[]) =>
    values
      .map((v, i) => (columns[i]?.left ? v.padEnd(widths[i] as number) : v.padStart(widths[i] as number)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  const out = [line(columns.map((c) => c.head)), rule, ...cells.slice(0, rows.length).map(line)];
  if (footer.length > 0) out.push(rule, ...cells.slice(rows.length).map(line));
  return out.join('\n');
}

type Row = Pick<ScenarioRow, 'abuse' | 'honest' | 'actors' | 'attempts' | 'latency' | 'entitledAttempts'> & {
  name: string;
};

const abuseColumns: Column<Row>[] = [
  { head: 'abuse scenario', value: (r) => r.name, left: true },
  { head: 'actors', value: (r) => String(r.actors) },
  { head: 'attempts', value: (r) => String(r.abuse.attempts) },
  { head: 'stopped', value: (r) => pct(r.abuse.stoppedRate) },
  { head: 'held', value: (r) => String(r.abuse.outcomes.held) },
  { head: 'chall', value: (r) => String(r.abuse.outcomes.challenged) },
  { head: 'rule', value: (r) => String(r.abuse.outcomes.blocked_by_rule) },
  { head: 'defense', value: (r) => String(r.abuse.outcomes.refused_by_defense) },
  { head: '429', value: (r) => String(r.abuse.outcomes.rate_limited) },
  { head: 'refused', value: (r) => String(r.abuse.outcomes.refused_business + r.abuse.outcomes.replayed) },
  { head: 'allowed', value: (r) => String(r.abuse.outcomes.allowed) },
  { head: 'err', value: (r) => String(r.abuse.outcomes.error) },
  { head: 'entitled', value: (r) => String(r.entitledAttempts) },
  { head: 'at stake', value: (r) => money(r.abuse.valueAtStakeMinor) },
  {
    head: 'value stopped',
    value: (r) =>
      pct(r.abuse.valueAtStakeMinor === 0 ? null : r.abuse.valueProtectedMinor / r.abuse.valueAtStakeMinor),
  },
  { head: 'leaked', value: (r) => money(r.abuse.valueLeakedMinor) },
  { head: 'protected', value: (r) => money(r.abuse.valueProtectedMinor) },
  { head: 'p50 ms', value: (r) => ms(r.latency.p50Ms) },
  { head: 'p99 ms', value: (r) => ms(r.latency.p99Ms) },
];

const honestColumns: Column<Row>[] = [
  { head: 'honest scenario', value: (r) => r.name, left: true },
  { head: 'customers', value: (r) => String(r.honest.customers) },
  { head: 'attempts', value: (r) => String(r.honest.attempts) },
  { head: 'served', value: (r) => String(r.honest.customersServed) },
  { head: 'denied', value: (r) => `${r.honest.customersDenied} (${pct(r.honest.deniedRate)})` },
  { head: 'hurt', value: (r) => `${r.honest.customersHurt} (${pct(r.honest.hurtRate)})` },
  { head: 'blocked', value: (r) => String(r.honest.customersBlocked) },
  { head: 'chall', value: (r) => String(r.honest.customersChallenged) },
  { head: 'held', value: (r) => String(r.honest.customersHeld) },
  { head: 'limited', value: (r) => String(r.honest.customersLimited) },
  { head: 'hurt attempts', value: (r) => `${r.honest.hurtAttempts} (${pct(r.honest.hurtAttemptRate)})` },
  { head: 'err', value: (r) => String(r.honest.outcomes.error) },
  { head: 'granted', value: (r) => money(r.honest.valueGrantedMinor) },
  { head: 'p50 ms', value: (r) => ms(r.latency.p50Ms) },
  { head: 'p99 ms', value: (r) => ms(r.latency.p99Ms) },
];

/** The scorecard as two tables (abuse, honest) and an overall line. */
export function formatScorecard(result: SimulationResult): string {
  const { rows, overall } = result.scorecard;
  const m = result.meta;
  const named = (r: ScenarioRow): Row => ({ ...r, name: r.scenario });
  const abuse = rows.filter((r) => r.label === 'abuse').map(named);
  const honest = rows.filter((r) => r.label === 'honest').map(named);
  const sumLatency = (label: 'abuse' | 'honest') => {
    const names = new Set(rows.filter((r) => r.label === label).map((r) => r.scenario));
    return latencySummary(result.attempts.filter((a) => names.has(a.scenario)));
  };
  const total = (label: 'abuse' | 'honest'): Row => ({
    name: 'all',
    actors: rows.filter((r) => r.label === label).reduce((n, r) => n + r.actors, 0),
    attempts: overall.attempts,
    abuse: overall.abuse,
    honest: overall.honest,
    entitledAttempts: overall.entitledAttempts,
    latency: sumLatency(label),
  });
  const out = [
    `promoguard simulate: seed ${m.seed}, scale ${m.scale}, duration ${m.durationSeconds} s, tag ${m.tag}, ` +
      `${rows.length} scenarios against ${m.url}`,
    '',
  ];
  if (abuse.length > 0) {
    out.push(table(abuseColumns, abuse, abuse.length > 1 ? [total('abuse')] : []), '');
  }
  if (honest.length > 0) {
    out.push(table(honestColumns, honest, honest.length > 1 ? [total('honest')] : []), '');
  }
  out.push(
    `overall: ${overall.attempts} attempts (${overall.httpCalls} HTTP calls, ${result.httpCalls['setup'] ?? 0} more for setup), ` +
      `latency p50 ${ms(overall.latency.p50Ms)} ms, p99 ${ms(overall.latency.p99Ms)} ms; ` +
      `abuse stopped ${pct(overall.abuse.stoppedRate)}, leaked ${money(overall.abuse.valueLeakedMinor)} of ` +
      `${money(overall.abuse.valueAtStakeMinor)} at stake (protected ${money(overall.abuse.valueProtectedMinor)}); ` +
      `honest customers hurt ${pct(overall.honest.hurtRate)}, denied ${pct(overall.honest.deniedRate)}`,
    `time: setup ${m.setupSeconds} s, traffic ${m.trafficSeconds} s, total ${m.totalSeconds} s`,
  );
  const later = result.attempts.filter((a) => a.heldAfterwards);
  if (later.length > 0) {
    const by = new Map<string, number>();
    for (const a of later) by.set(a.scenario, (by.get(a.scenario) ?? 0) + 1);
    out.push(
      `held afterwards: ${later.length} redemptions granted unflagged were held for review before the run ended ` +
        `(a later one's rule held them along; counted as held): ` +
        [...by].map(([scenario, n]) => `${scenario} ${n}`).join(', '),
    );
  }
  if (result.operator) out.push('', formatOperator(result.operator));
  return `${out.join('\n')}\n`;
}

const seconds = (ms: number | null) => (ms === null ? '-' : (ms / 1000).toFixed(1));

/** Operator mode: the remediations applied during the run (when, by which policy, on what), and the alerts. */
export function formatOperator(op: OperatorResult): string {
  const scenarioOf = (campaignId: string | null) =>
    campaignId ? (op.campaignScenarios[campaignId] ?? campaignId) : '-';
  const switched = op.policies.filter((p) => p.switched).length;
  const enforcing = op.policies.filter((p) => p.mode === 'enforce' || p.switched).length;
  const byKind = new Map<string, number>();
  for (const a of op.alerts) byKind.set(a.kind, (byKind.get(a.kind) ?? 0) + 1);
  const out = [
    `operator: ${op.policies.length} remediation policies, ${enforcing} enforcing` +
      (switched > 0 ? ` (${switched} switched from dry_run for the run)` : '') +
      `; ${op.alerts.length} alerts (${[...byKind].map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}); ` +
      `${op.remediations.length} remediations`,
  ];
  if (op.remediations.length > 0) {
    const columns: Column<OperatorRemediation>[] = [
      { head: 'at s', value: (r) => seconds(r.atMs) },
      { head: 'action', value: (r) => (r.dryRun ? `${r.action} (dry run)` : r.action), left: true },
      { head: 'policy', value: (r) => r.policyId, left: true },
      { head: 'alert', value: (r) => r.alertKind, left: true },
      { head: 'target', value: (r) => r.target.type, left: true },
      { head: 'scenario', value: (r) => scenarioOf(r.target.campaignId), left: true },
      { head: 'ended s', value: (r) => seconds(r.endedAtMs) },
    ];
    out.push('', table(columns, op.remediations, []));
  }
  if (op.alerts.length > 0) {
    const columns: Column<OperatorAlert>[] = [
      { head: 'at s', value: (a) => seconds(a.atMs) },
      { head: 'alert', value: (a) => a.kind, left: true },
      { head: 'severity', value: (a) => a.severity, left: true },
      { head: 'scope', value: (a) => a.scope.type, left: true },
      { head: 'scenario', value: (a) => scenarioOf(a.scope.campaignId), left: true },
      { head: 'observed', value: (a) => a.observed.toFixed(1) },
      { head: 'expected', value: (a) => a.expected.toFixed(2) },
    ];
    out.push('', table(columns, op.alerts, []));
  }
  return out.join('\n');
}

/** Writes the whole result; returns the path written. */
export async function writeResult(result: SimulationResult, out?: string): Promise<string> {
  const file =
    out ??
    path.join(
      'simulate-results',
      `${result.meta.startedAt.replace(/[:.]/g, '-')}-seed${result.meta.seed}.json`,
    );
  await mkdir(path.dirname(path.resolve(file)), { recursive: true });
  await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
  return file;
}

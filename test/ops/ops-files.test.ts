/**
 * The operations files under ops/ and docs/runbooks/ against the metric catalogue and real Prometheus
 * tooling: promtool checks and unit-tests the rules, the example config and every dashboard query;
 * every metric a rule or a dashboard reads must be one the service exports (or a recording rule
 * defined here); every alert has its runbook and promtool tests that see it fire and stay quiet.
 *
 * promtool comes with the Debian package `prometheus` (or set PROMTOOL to its path). Without it the
 * promtool checks are skipped with a notice, except under CI, where they run and fail.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { DEFAULT_METRIC_PREFIXES, METRICS, type MetricType } from '../../src/metrics/catalogue.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PROMETHEUS_DIR = join(ROOT, 'ops/prometheus');
const RULES_FILE = join(PROMETHEUS_DIR, 'rules/promoguard.rules.yml');
const TESTS_DIR = join(PROMETHEUS_DIR, 'tests');
const EXAMPLE_CONFIG = join(PROMETHEUS_DIR, 'prometheus.example.yml');
const GRAFANA_DIR = join(ROOT, 'ops/grafana');
const DASHBOARDS = ['executive', 'on-call', 'debug'];
const RUNBOOKS_DIR = join(ROOT, 'docs/runbooks');

const PROMTOOL = process.env['PROMTOOL'] || 'promtool';
const inCi = ['true', '1'].includes((process.env['CI'] ?? '').toLowerCase());

interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  groups: { name: string; rules: Rule[] }[];
}
interface AlertTest {
  eval_time: string;
  alertname: string;
  exp_alerts?: unknown[] | null;
}
interface PromtoolTestFile {
  rule_files: string[];
  tests: { alert_rule_test?: AlertTest[] }[];
}
interface Target {
  expr?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
}
interface Variable {
  name: string;
  type: string;
  query?: string | { query?: string };
  datasource?: { type?: string; uid?: string };
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Variable[] };
}

/**
 * prom-client's default metrics (collectDefaultMetrics), listed so the check does not need the
 * library; `nodejs_gc_duration_seconds` is its one histogram.
 */
const PROM_CLIENT_DEFAULTS = new Set([
  'process_cpu_user_seconds_total',
  'process_cpu_system_seconds_total',
  'process_cpu_seconds_total',
  'process_start_time_seconds',
  'process_resident_memory_bytes',
  'process_virtual_memory_bytes',
  'process_heap_bytes',
  'process_open_fds',
  'process_max_fds',
  'nodejs_eventloop_lag_seconds',
  'nodejs_eventloop_lag_min_seconds',
  'nodejs_eventloop_lag_max_seconds',
  'nodejs_eventloop_lag_mean_seconds',
  'nodejs_eventloop_lag_stddev_seconds',
  'nodejs_eventloop_lag_p50_seconds',
  'nodejs_eventloop_lag_p90_seconds',
  'nodejs_eventloop_lag_p99_seconds',
  'nodejs_active_resources',
  'nodejs_active_resources_total',
  'nodejs_active_handles',
  'nodejs_active_handles_total',
  'nodejs_active_requests',
  'nodejs_active_requests_total',
  'nodejs_heap_size_total_bytes',
  'nodejs_heap_size_used_bytes',
  'nodejs_external_memory_bytes',
  'nodejs_heap_space_size_total_bytes',
  'nodejs_heap_space_size_used_bytes',
  'nodejs_heap_space_size_available_bytes',
  'nodejs_version_info',
  'nodejs_gc_duration_seconds',
]);
const PROM_CLIENT_HISTOGRAMS = new Set(['nodejs_gc_duration_seconds']);
const HISTOGRAM_SUFFIXES = ['_bucket', '_sum', '_count'];
/** Labels Prometheus adds to every scraped series. */
const TARGET_LABELS = ['job', 'instance'];

const catalogue = new Map<string, { type: MetricType; labels: readonly string[] }>(
  METRICS.map((m) => [m.name, { type: m.type, labels: m.labels }]),
);

const ruleFile = parse(readFileSync(RULES_FILE, 'utf8')) as RuleFile;
const rules = ruleFile.groups.flatMap((g) => g.rules);
const alerts = rules.filter((r): r is Rule & { alert: string } => typeof r.alert === 'string');
const alertNames = [...new Set(alerts.map((r) => r.alert))];
const recorded = new Set(rules.flatMap((r) => (r.record ? [r.record] : [])));

const testFiles = readdirSync(TESTS_DIR)
  .filter((f) => f.endsWith('.test.yml'))
  .sort();
const promtoolTests = testFiles.map((file) => ({
  file,
  content: parse(readFileSync(join(TESTS_DIR, file), 'utf8')) as PromtoolTestFile,
}));

const dashboards = DASHBOARDS.map((name) => ({
  name,
  json: JSON.parse(readFileSync(join(GRAFANA_DIR, `${name}.json`), 'utf8')) as Dashboard,
}));

/**
 * The PromQL a Grafana variable query runs: `label_values(selector, label)` reads `selector`,
 * `query_result(q)` runs `q`; `label_values(label)` and `label_names()` read no metric.
 */
function variablePromql(query: string): string | undefined {
  const match = /^\s*(?:label_values\((.+),\s*\w+\)|query_result\((.+)\))\s*$/s.exec(query);
  return match?.[1] ?? match?.[2];
}

/** Every PromQL expression of the rules and the dashboards, with where it comes from. */
const expressions: { where: string; expr: string; from: 'rules' | 'dashboard' }[] = [
  ...rules.map((r) => ({ where: `rule ${r.record ?? r.alert}`, expr: r.expr, from: 'rules' as const })),
  ...dashboards.flatMap(({ name, json }) => [
    ...json.panels.flatMap((p) =>
      (p.targets ?? []).flatMap((t) =>
        t.expr ? [{ where: `${name}: ${p.title}`, expr: t.expr, from: 'dashboard' as const }] : [],
      ),
    ),
    ...json.templating.list.flatMap((v) => {
      const query = typeof v.query === 'string' ? v.query : v.query?.query;
      const expr = v.type === 'query' && query ? variablePromql(query) : undefined;
      return expr ? [{ where: `${name}: variable ${v.name}`, expr, from: 'dashboard' as const }] : [];
    }),
  ]),
];

// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JavaScript template
const DATASOURCE_REF = { type: 'prometheus', uid: '${datasource}' };

/** PromQL with string literals emptied: label values (routes, regexes) are not metric names. */
const withoutStrings = (expr: string) => expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');

/**
 * Metric names an expression reads: identifiers with a service or prom-client prefix, and
 * recording-rule names (they contain a colon). The look-behind keeps durations (`5m`), subquery
 * steps (`[10m:1m]`) and Grafana variables (`$__rate_interval`) out.
 */
function metricNames(expr: string): string[] {
  const names = new Set<string>();
  for (const [token] of withoutStrings(expr).matchAll(/(?<![\w:$.])[a-zA-Z_:][\w:]*/g)) {
    const prefixed = ['promoguard_', ...DEFAULT_METRIC_PREFIXES].some((p) => token.startsWith(p));
    if (token.includes(':') || prefixed) names.add(token);
  }
  return [...names];
}

/** The catalogue metric a series name belongs to (a histogram's _bucket/_sum/_count included). */
function catalogueMetric(
  name: string,
): { name: string; type: MetricType; labels: readonly string[]; suffix?: string } | undefined {
  const direct = catalogue.get(name);
  if (direct) return { name, ...direct };
  for (const suffix of HISTOGRAM_SUFFIXES) {
    const base = name.endsWith(suffix) ? name.slice(0, -suffix.length) : undefined;
    const metric = base === undefined ? undefined : catalogue.get(base);
    if (base !== undefined && metric?.type === 'histogram') return { name: base, ...metric, suffix };
  }
  return undefined;
}

function isKnown(name: string): boolean {
  if (name.includes(':')) return recorded.has(name);
  if (catalogueMetric(name) || PROM_CLIENT_DEFAULTS.has(name)) return true;
  return HISTOGRAM_SUFFIXES.some(
    (suffix) => name.endsWith(suffix) && PROM_CLIENT_HISTOGRAMS.has(name.slice(0, -suffix.length)),
  );
}

/** `docs/runbooks/<this>.md` of an alert: PromoguardReviewQueuePastSLA -> promoguard-review-queue-past-sla. */
const kebab = (name: string) =>
  name
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1-$2')
    .toLowerCase();

const run = promisify(execFile);

async function promtool(args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(PROMTOOL, args, { cwd: PROMETHEUS_DIR, timeout: 120_000 });
    return { code: 0, output: `${stdout}${stderr}` };
  } catch (error) {
    const e = error as { code?: number | string; stdout?: string; stderr?: string; message: string };
    return {
      code: typeof e.code === 'number' ? e.code : -1,
      output: `${e.stdout ?? ''}${e.stderr ?? ''}${e.message}`,
    };
  }
}

function promtoolVersion(): string | undefined {
  try {
    return execFileSync(PROMTOOL, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch {
    return undefined;
  }
}

const hasPromtool = promtoolVersion() !== undefined;
if (!hasPromtool && !inCi) {
  process.stderr.write(
    `ops-files.test: promtool not found (looked for "${PROMTOOL}"); the promtool checks are skipped. ` +
      'Install the Debian package `prometheus` or set PROMTOOL; under CI=true they are required.\n',
  );
}

// Under CI this block always runs, so a missing promtool fails instead of skipping.
describe.skipIf(!hasPromtool && !inCi)('promtool', () => {
  it('is installed', () => {
    expect(
      hasPromtool,
      `promtool not found (looked for "${PROMTOOL}"): install the Debian package prometheus`,
    ).toBe(true);
  });

  it('checks the rules file', async () => {
    const result = await promtool(['check', 'rules', RULES_FILE]);
    expect(result.code, result.output).toBe(0);
    expect(result.output).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it('passes every rule unit test', async () => {
    expect(testFiles.length).toBeGreaterThan(0);
    const result = await promtool(['test', 'rules', ...testFiles.map((f) => join(TESTS_DIR, f))]);
    expect(result.code, result.output).toBe(0);
    expect(result.output.match(/SUCCESS/g)?.length, result.output).toBe(testFiles.length);
  });

  it('checks the example config with its rule files', async () => {
    const example = parse(readFileSync(EXAMPLE_CONFIG, 'utf8')) as {
      rule_files: string[];
      scrape_configs: { job_name: string; authorization?: { credentials_file?: string } }[];
    };
    // The example's own paths: the token file is the operator's, so the copy checked below points at
    // a scratch one (promtool requires it to exist).
    expect(example.rule_files.map((f) => resolve(PROMETHEUS_DIR, f))).toEqual([RULES_FILE]);
    const job = example.scrape_configs.find((s) => s.job_name === 'promoguard');
    expect(job?.authorization?.credentials_file).toBeTruthy();

    const dir = mkdtempSync(join(tmpdir(), 'promoguard-ops-'));
    try {
      writeFileSync(join(dir, 'token'), 'example-token\n');
      for (const s of example.scrape_configs) {
        if (s.authorization?.credentials_file) s.authorization.credentials_file = join(dir, 'token');
      }
      example.rule_files = [RULES_FILE];
      writeFileSync(join(dir, 'prometheus.yml'), stringify(example));
      const result = await promtool(['check', 'config', join(dir, 'prometheus.yml')]);
      expect(result.code, result.output).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('parses every dashboard query', async () => {
    // promtool has no query checker; a recording rule per query makes `check rules` parse each one.
    const queries = expressions.filter((e) => e.from === 'dashboard');
    const file = {
      groups: [
        {
          name: 'dashboard-queries',
          rules: queries.map((q, i) => ({
            record: `dashboard_query_${i}`,
            expr: q.expr
              .replaceAll('$__rate_interval', '5m')
              .replaceAll('$__range', '1h')
              .replace(/\$\{?\w+\}?/g, '.*'),
          })),
        },
      ],
    };
    const dir = mkdtempSync(join(tmpdir(), 'promoguard-ops-'));
    try {
      writeFileSync(join(dir, 'queries.yml'), stringify(file));
      const result = await promtool(['check', 'rules', join(dir, 'queries.yml')]);
      expect(result.code, result.output).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('metric names', () => {
  it('finds names the way PromQL reads them', () => {
    expect(
      metricNames(
        'sum by (le) (rate(promoguard_a_bucket{le="0.025", route="/v1/promoguard_b"}[10m:1m])) / job:promoguard_c:ratio_rate5m offset 5m + $__rate_interval',
      ),
    ).toEqual(['promoguard_a_bucket', 'job:promoguard_c:ratio_rate5m']);
  });

  it('every metric a rule or a dashboard reads is exported, or recorded by the rules', () => {
    const unknown = expressions.flatMap(({ where, expr }) =>
      metricNames(expr)
        .filter((name) => !isKnown(name))
        .map((name) => `${where}: ${name}`),
    );
    expect(unknown, unknown.join('\n')).toEqual([]);
    expect(expressions.length).toBeGreaterThan(50);
  });

  it('every label matcher on a catalogue metric names one of its labels', () => {
    const wrong: string[] = [];
    for (const { where, expr } of expressions) {
      for (const [, name = '', matchers = ''] of withoutStrings(expr).matchAll(
        /(promoguard_\w+)\s*\{([^}]*)\}/g,
      )) {
        const metric = catalogueMetric(name);
        if (!metric) continue;
        const allowed = new Set([
          ...metric.labels,
          ...TARGET_LABELS,
          ...(metric.suffix === '_bucket' ? ['le'] : []),
        ]);
        for (const [, label = ''] of matchers.matchAll(/(\w+)\s*(?:=~|!~|!=|=)/g)) {
          if (!allowed.has(label)) wrong.push(`${where}: ${name}{${label}}`);
        }
      }
    }
    expect(wrong, wrong.join('\n')).toEqual([]);
  });

  it("prom-client's defaults carry the catalogue's default prefixes", () => {
    for (const name of PROM_CLIENT_DEFAULTS) {
      expect(
        DEFAULT_METRIC_PREFIXES.some((p) => name.startsWith(p)),
        name,
      ).toBe(true);
    }
  });
});

describe('alerts', () => {
  it('have a severity, a summary, a description and a runbook that exists', () => {
    expect(alertNames.length).toBeGreaterThan(0);
    for (const rule of alerts) {
      expect(['page', 'ticket'], rule.alert).toContain(rule.labels?.['severity']);
      expect(rule.annotations?.['summary'], rule.alert).toBeTruthy();
      expect(rule.annotations?.['description'], rule.alert).toBeTruthy();
      const url = rule.annotations?.['runbook_url'];
      expect(url, rule.alert).toBe(`docs/runbooks/${kebab(rule.alert)}.md`);
      expect(existsSync(join(ROOT, url ?? '')), `${rule.alert}: ${url}`).toBe(true);
    }
  });

  it('every runbook belongs to an alert, and the runbook index links each one', () => {
    const index = readFileSync(join(RUNBOOKS_DIR, 'README.md'), 'utf8');
    const expected = new Set(alertNames.map((a) => `${kebab(a)}.md`));
    for (const file of readdirSync(RUNBOOKS_DIR).filter((f) => f.endsWith('.md') && f !== 'README.md')) {
      if (file !== 'incident-checklist.md') expect(expected, file).toContain(file);
      expect(index, file).toContain(`(${file})`);
    }
  });

  it('are each tested firing and quiet', () => {
    const cases = promtoolTests.flatMap(({ content }) =>
      content.tests.flatMap((t) => t.alert_rule_test ?? []),
    );
    // A test of a misspelt alert with no expected alerts would pass against nothing.
    expect(cases.map((c) => c.alertname).filter((name) => !alertNames.includes(name))).toEqual([]);
    for (const name of alertNames) {
      const mine = cases.filter((c) => c.alertname === name);
      expect(
        mine.some((c) => (c.exp_alerts ?? []).length > 0),
        `${name} has no firing case`,
      ).toBe(true);
      expect(
        mine.some((c) => (c.exp_alerts ?? []).length === 0),
        `${name} has no quiet case`,
      ).toBe(true);
    }
  });

  it('unit tests load the rules file itself', () => {
    for (const { file, content } of promtoolTests) {
      expect(
        content.rule_files.map((f) => resolve(TESTS_DIR, f)),
        file,
      ).toEqual([RULES_FILE]);
    }
  });
});

describe('dashboards', () => {
  it.each(dashboards)(
    '$name: schema 39, a Prometheus datasource variable, panels on the grid',
    ({ json }) => {
      expect(json.schemaVersion).toBe(39);
      expect(json.uid).toMatch(/^promoguard-/);
      expect(json.title).toMatch(/^Promoguard \/ /);
      const datasource = json.templating.list.find((v) => v.name === 'datasource');
      expect(datasource).toMatchObject({ type: 'datasource', query: 'prometheus' });

      const ids = new Set<number>();
      const taken: Panel['gridPos'][] = [];
      for (const panel of json.panels) {
        expect(['timeseries', 'stat', 'heatmap', 'table', 'row'], panel.title).toContain(panel.type);
        expect(ids.has(panel.id), `duplicate id ${panel.id}`).toBe(false);
        ids.add(panel.id);
        const { x, y, w, h } = panel.gridPos;
        expect(x + w, panel.title).toBeLessThanOrEqual(24);
        const overlaps = taken.some((o) => x < o.x + o.w && o.x < x + w && y < o.y + o.h && o.y < y + h);
        expect(overlaps, `${panel.title} overlaps another panel`).toBe(false);
        taken.push(panel.gridPos);
        if (panel.type === 'row') continue;
        expect(panel.datasource, panel.title).toEqual(DATASOURCE_REF);
        expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
        for (const target of panel.targets ?? []) {
          expect(target.datasource, panel.title).toEqual(DATASOURCE_REF);
        }
      }
    },
  );

  it('the three dashboards have distinct uids', () => {
    expect(new Set(dashboards.map((d) => d.json.uid)).size).toBe(dashboards.length);
  });
});

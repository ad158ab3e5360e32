/**
 * Rules: every rule with its hit rate over a chosen window (enforced and shadow hits side by side), an
 * editor that type-checks the CEL expression as you type (the API's check, its error shown at its
 * place), what a shadow rule would have changed had it been enforced, and backtests whose
 * confusion-matrix cells open the decisions behind them.
 */
import { type FormEvent, useEffect, useMemo, useState } from 'react';
import { ApiError, api, need, problemMessage, type Schema } from '../api.ts';
import { Chart, type ChartOption } from '../chart.tsx';
import { count, Empty, ErrorBox, Show, Spinner, useLoad, when } from '../ui.tsx';
import '../rules.css';

type Rule = Schema<'Rule'>;
type RuleHits = Schema<'RuleHits'>;
type Action = Rule['action'];
type Mode = Rule['mode'];

const ACTIONS: Action[] = ['allow', 'review', 'challenge', 'block'];
const DAY = 86_400_000;
const WINDOWS = [
  { days: 1, label: 'last 24 hours' },
  { days: 7, label: 'last 7 days' },
  { days: 30, label: 'last 30 days' },
] as const;

const percent = (rate: number | null) =>
  rate === null ? '—' : `${(rate * 100).toFixed(rate > 0 && rate < 0.001 ? 3 : 1)} %`;

// ---------------------------------------------------------------------------------------------------
// The CEL check as you type
// ---------------------------------------------------------------------------------------------------

interface Position {
  offset: number;
  end: number;
  line: number;
  column: number;
}

type Check =
  | { state: 'idle' | 'checking'; message: string }
  | { state: 'ok'; message: string }
  | { state: 'bad'; message: string; position: Position | null };

/** The checker's message and position from a `rule_invalid` problem (errors[0]). */
function checkError(error: unknown): { message: string; position: Position | null } {
  const first = (error as { errors?: { message?: unknown; position?: unknown }[] } | undefined)?.errors?.[0];
  const position = first?.position as Position | undefined;
  const valid =
    position !== undefined &&
    [position.offset, position.end, position.line, position.column].every(Number.isInteger);
  return {
    message: typeof first?.message === 'string' ? first.message : problemMessage(error),
    position: valid ? position : null,
  };
}

function useCheck(expression: string): Check {
  const [result, setResult] = useState<Check>({ state: 'idle', message: '' });
  useEffect(() => {
    if (expression.trim() === '') {
      setResult({ state: 'idle', message: '' });
      return;
    }
    setResult({ state: 'checking', message: 'Checking…' });
    let stale = false;
    // Checked once typing pauses: one request per pause, not per key.
    const timer = window.setTimeout(async () => {
      const { data, error } = await api.POST('/v1/rules/check', { body: { expression } });
      if (stale) return;
      if (data)
        setResult({
          state: 'ok',
          message: `Type-checks. Reads: ${data.features.join(', ') || 'no features'}`,
        });
      else setResult({ state: 'bad', ...checkError(error) });
    }, 350);
    return () => {
      stale = true;
      window.clearTimeout(timer);
    };
  }, [expression]);
  return result;
}

/** The line the error is on, with a marker under the span it names. */
function ErrorPlace({ expression, position }: { expression: string; position: Position }) {
  const lines = expression.split('\n');
  const line = lines[position.line - 1] ?? '';
  const width = Math.max(1, Math.min(position.end - position.offset, line.length - position.column + 1));
  return (
    <pre className="cel-place" data-testid="cel-place" aria-hidden="true">
      {line}
      {'\n'}
      {' '.repeat(position.column - 1)}
      {'^'.repeat(width)}
    </pre>
  );
}

// ---------------------------------------------------------------------------------------------------
// Editor: a new rule, or the chosen one
// ---------------------------------------------------------------------------------------------------

interface Draft {
  name: string;
  description: string;
  expression: string;
  action: Action;
  mode: Mode;
  reason: string;
  hold_with: HoldWith | null;
}

type HoldWith = NonNullable<Rule['hold_with']>;

const EMPTY: Draft = {
  name: '',
  description: '',
  expression: '',
  action: 'review',
  mode: 'shadow',
  reason: '',
  hold_with: null,
};

function draftOf(rule: Rule | null): Draft {
  if (!rule) return EMPTY;
  const { name, description, expression, action, mode, reason, hold_with } = rule;
  return { name, description, expression, action, mode, reason, hold_with };
}

function RuleEditor({
  rule,
  saved,
  close,
  notice,
}: {
  rule: Rule | null;
  /** After a change: the rule as saved, and what to tell the analyst. */
  saved: (rule: Rule, notice: string) => void;
  close: () => void;
  notice: string;
}) {
  const [draft, setDraft] = useState<Draft>(() => draftOf(rule));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const check = useCheck(draft.expression);
  const set = <K extends keyof Draft>(key: K, value: Draft[K]) => setDraft((d) => ({ ...d, [key]: value }));

  async function run(change: () => Promise<Rule>, done: string) {
    setBusy(true);
    setError(null);
    try {
      saved(await change(), done);
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.problem : caught);
    } finally {
      setBusy(false);
    }
  }

  function save(event: FormEvent) {
    event.preventDefault();
    // Only a hold brings earlier redemptions with it; the API refuses hold_with on other actions.
    const body = { ...draft, hold_with: draft.action === 'review' ? draft.hold_with : null };
    if (rule) {
      void run(
        () => need(api.PATCH('/v1/rules/{id}', { params: { path: { id: rule.id } }, body })),
        'Rule saved; it applies to requests begun 2 s from now.',
      );
    } else {
      void run(
        () => need(api.POST('/v1/rules', { body })),
        'Rule created; it applies to requests begun 2 s from now.',
      );
    }
  }

  function toggle(enabled: boolean) {
    if (!rule) return;
    void run(
      () => need(api.PATCH('/v1/rules/{id}', { params: { path: { id: rule.id } }, body: { enabled } })),
      enabled ? 'Rule enabled.' : 'Rule disabled.',
    );
  }

  const title = rule ? 'Edit rule' : 'New rule';
  return (
    <form className="form rule-editor" onSubmit={save} aria-labelledby="editor-title">
      <div className="editor-head">
        <h2 id="editor-title">{title}</h2>
        {rule && (
          <button type="button" onClick={close}>
            New rule
          </button>
        )}
      </div>
      {rule && (
        <p className="muted small">
          <span className="mono">{rule.id}</span> · version {rule.version}
          {rule.pack ? ` · shipped (${rule.pack})` : ''} ·{' '}
          <span className={`badge ${rule.enabled ? 'badge-ok' : 'badge-failed'}`}>
            {rule.enabled ? 'enabled' : 'disabled'}
          </span>
        </p>
      )}
      <label>
        Name
        <input value={draft.name} onChange={(e) => set('name', e.target.value)} required maxLength={120} />
      </label>
      <label>
        Expression (CEL)
        <textarea
          className="mono"
          value={draft.expression}
          onChange={(e) => set('expression', e.target.value)}
          rows={4}
          spellCheck={false}
          aria-invalid={check.state === 'bad'}
          aria-describedby="cel-check"
        />
      </label>
      <p id="cel-check" className={`check check-${check.state}`} role="status" aria-live="polite">
        {check.state === 'bad' && check.position
          ? `Line ${check.position.line}, column ${check.position.column}: ${check.message}`
          : check.message}
      </p>
      {check.state === 'bad' && check.position && (
        <ErrorPlace expression={draft.expression} position={check.position} />
      )}
      <div className="row">
        <label>
          Action
          <select value={draft.action} onChange={(e) => set('action', e.target.value as Action)}>
            <option value="review">review</option>
            <option value="challenge">challenge</option>
            <option value="block">block</option>
            <option value="allow">allow</option>
          </select>
        </label>
        <label>
          Mode
          <select value={draft.mode} onChange={(e) => set('mode', e.target.value as Mode)}>
            <option value="shadow">shadow (recorded, never acts)</option>
            <option value="enforce">enforce</option>
          </select>
        </label>
        {draft.action === 'review' && (
          <label>
            Also hold
            <select
              value={draft.hold_with ?? ''}
              onChange={(e) => set('hold_with', e.target.value === '' ? null : (e.target.value as HoldWith))}
            >
              <option value="">nothing more</option>
              <option value="code_new_accounts_24h">the code's fresh accounts of the last day</option>
              <option value="campaign_new_accounts_1h">the campaign's fresh accounts of the last hour</option>
            </select>
          </label>
        )}
      </div>
      <label>
        Reason (shown on decisions)
        <input
          value={draft.reason}
          onChange={(e) => set('reason', e.target.value)}
          required
          maxLength={500}
        />
      </label>
      <label>
        Description
        <textarea
          value={draft.description}
          onChange={(e) => set('description', e.target.value)}
          rows={2}
          maxLength={2000}
        />
      </label>
      {error !== null && <ErrorBox error={error} />}
      {notice && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      <div className="actions">
        <button type="submit" className="primary" disabled={busy || check.state === 'bad'}>
          {busy ? 'Saving…' : rule ? 'Save changes' : 'Save rule'}
        </button>
        {rule &&
          (rule.enabled ? (
            <button type="button" onClick={() => toggle(false)} disabled={busy}>
              Disable
            </button>
          ) : (
            <button type="button" onClick={() => toggle(true)} disabled={busy}>
              Enable
            </button>
          ))}
      </div>
    </form>
  );
}

// ---------------------------------------------------------------------------------------------------
// Shadow beside enforced
// ---------------------------------------------------------------------------------------------------

function ShadowPanel({
  rule,
  hits,
  windowLabel,
}: {
  rule: Rule;
  hits: RuleHits | undefined;
  windowLabel: string;
}) {
  const rows = hits?.shadow ?? [];
  const fired = rows.reduce((sum, r) => sum + r.decisions, 0);
  const changed = rows.filter((r) => r.decided !== r.would_be);
  const changedTotal = changed.reduce((sum, r) => sum + r.decisions, 0);
  const option = useMemo<ChartOption>(() => {
    const by = (decided: Action, same: boolean) =>
      rows
        .filter((r) => r.decided === decided && (r.decided === r.would_be) === same)
        .reduce((sum, r) => sum + r.decisions, 0);
    return {
      tooltip: { trigger: 'axis' },
      legend: { top: 0 },
      grid: { left: 40, right: 10, top: 30, bottom: 30 },
      xAxis: { type: 'category', data: ACTIONS.map((a) => `enforced ${a}`) },
      yAxis: { type: 'value', minInterval: 1 },
      series: [
        {
          name: 'unchanged',
          type: 'bar',
          stack: 'all',
          data: ACTIONS.map((a) => by(a, true)),
          color: '#8c959f',
        },
        {
          name: `would be ${rule.action}`,
          type: 'bar',
          stack: 'all',
          data: ACTIONS.map((a) => by(a, false)),
          color: '#b42318',
        },
      ],
    };
  }, [rows, rule.action]);

  return (
    <section className="panel shadow-panel" aria-label="Shadow beside enforced">
      <h3>Shadow beside enforced ({windowLabel})</h3>
      <p>
        Enforced hits <strong data-testid="enforced-hits">{count(hits?.enforced_hits ?? 0)}</strong> · Shadow
        hits <strong data-testid="shadow-hits">{count(hits?.shadow_hits ?? 0)}</strong>
      </p>
      {fired === 0 ? (
        <p className="muted">
          {rule.mode === 'shadow'
            ? 'It has not fired in shadow in this window.'
            : 'It did not run in shadow in this window.'}
        </p>
      ) : (
        <>
          <p data-testid="shadow-summary">
            Enforced, it would have changed {count(changedTotal)} of the {count(fired)} decisions it fired on
            {changed.length > 0 ? ': ' : '.'}
            {changed.map((r) => `${count(r.decisions)} ${r.decided} → ${r.would_be}`).join(', ')}
          </p>
          <table className="list" aria-label="Shadow comparison">
            <thead>
              <tr>
                <th scope="col">Enforced outcome</th>
                <th scope="col">If this rule were enforced</th>
                <th scope="col" className="num">
                  Decisions
                </th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr
                  key={`${r.decided}-${r.would_be}`}
                  className={r.decided !== r.would_be ? 'changed' : undefined}
                >
                  <td>{r.decided}</td>
                  <td>{r.decided === r.would_be ? `${r.would_be} (unchanged)` : r.would_be}</td>
                  <td className="num">{count(r.decisions)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <Chart option={option} label={`${count(changedTotal)} decisions would have changed`} height={200} />
        </>
      )}
    </section>
  );
}

// ---------------------------------------------------------------------------------------------------
// Backtest with a confusion matrix whose cells open their decisions
// ---------------------------------------------------------------------------------------------------

type Backtest = Awaited<ReturnType<typeof runBacktest>>;
type Cell = keyof Backtest['examples'];
type Example = Backtest['examples'][Cell][number];

const CELLS: Record<Cell, string> = {
  true_positives: 'Rule fires, labeled abuse',
  false_positives: 'Rule fires, labeled legitimate',
  false_negatives: 'Rule silent, labeled abuse',
  true_negatives: 'Rule silent, labeled legitimate',
};

function runBacktest(ruleId: string, period: { from: Date; to: Date }) {
  return need(
    api.POST('/v1/rules/{id}/backtest', {
      params: { path: { id: ruleId } },
      body: { from: period.from.toISOString(), to: period.to.toISOString() },
    }),
  );
}

/** `YYYY-MM-DDTHH:MM` in local time, as a datetime-local input holds it. */
function localInput(date: Date): string {
  const shifted = new Date(date.getTime() - date.getTimezoneOffset() * 60_000);
  return shifted.toISOString().slice(0, 16);
}

function DecisionDetail({ id }: { id: string }) {
  const loaded = useLoad(() => need(api.GET('/v1/decisions/{id}', { params: { path: { id } } })), [id]);
  return (
    <Show loaded={loaded}>
      {(d) => (
        <div className="decision-detail">
          <p>
            Decided <strong>{d.action}</strong> ({d.outcome}) on {when(d.created_at)}; label{' '}
            <strong>{d.label ?? 'none'}</strong>
            {d.decision.allow_listed ? '; allow-listed' : ''}.
          </p>
          {d.decision.rules.length > 0 ? (
            <ul className="plain">
              {d.decision.rules.map((r) => (
                <li key={r.id}>
                  {r.name} — {r.mode} {r.action}, {r.result}
                  {Object.keys(r.features).length > 0 && (
                    <span className="mono small">
                      {' '}
                      (
                      {Object.entries(r.features)
                        .map(([k, v]) => `${k}=${v}`)
                        .join(', ')}
                      )
                    </span>
                  )}
                </li>
              ))}
            </ul>
          ) : (
            <p className="muted">No rule fired on it.</p>
          )}
        </div>
      )}
    </Show>
  );
}

function CellExamples({ cell, examples, total }: { cell: Cell; examples: Example[]; total: number }) {
  const [open, setOpen] = useState<string | null>(null);
  return (
    <section className="cell-examples" aria-label={`Examples: ${CELLS[cell]}`}>
      <h3>
        {CELLS[cell]}:{' '}
        {examples.length < total ? `the first ${examples.length} of ${count(total)}` : count(total)}
      </h3>
      {examples.length === 0 ? (
        <p className="muted">No decisions in this cell.</p>
      ) : (
        <table className="list" aria-label={`Decisions: ${CELLS[cell]}`}>
          <thead>
            <tr>
              <th scope="col">Decision</th>
              <th scope="col">When</th>
              <th scope="col">Customer</th>
              <th scope="col">Outcome</th>
            </tr>
          </thead>
          <tbody>
            {examples.map((e) => (
              <ExampleRow
                key={e.id}
                example={e}
                open={open === e.id}
                toggle={() => setOpen(open === e.id ? null : e.id)}
              />
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function ExampleRow({ example, open, toggle }: { example: Example; open: boolean; toggle: () => void }) {
  return (
    <>
      <tr>
        <td>
          <button type="button" className="link mono" aria-expanded={open} onClick={toggle}>
            {example.id}
          </button>{' '}
          <a
            className="small"
            href={`/v1/decisions/${encodeURIComponent(example.id)}`}
            target="_blank"
            rel="noreferrer"
          >
            JSON
          </a>
        </td>
        <td>{when(example.created_at)}</td>
        <td className="mono small">{example.customer_id}</td>
        <td>
          {example.action} ({example.outcome})
          {example.redemption_id && <div className="mono small">{example.redemption_id}</div>}
        </td>
      </tr>
      {open && (
        <tr>
          <td colSpan={4}>
            <DecisionDetail id={example.id} />
          </td>
        </tr>
      )}
    </>
  );
}

function BacktestPanel({ rule }: { rule: Rule }) {
  const [days, setDays] = useState<number | 'custom'>(7);
  const [from, setFrom] = useState(() => localInput(new Date(Date.now() - 7 * DAY)));
  const [to, setTo] = useState(() => localInput(new Date()));
  const [result, setResult] = useState<Backtest | null>(null);
  const [cell, setCell] = useState<Cell | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  async function run() {
    setBusy(true);
    setError(null);
    setCell(null);
    try {
      const end = days === 'custom' ? new Date(to) : new Date();
      const start = days === 'custom' ? new Date(from) : new Date(end.getTime() - days * DAY);
      setResult(await runBacktest(rule.id, { from: start, to: end }));
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.problem : caught);
    } finally {
      setBusy(false);
    }
  }

  const figure = (c: Cell) =>
    result
      ? {
          true_positives: result.true_positives,
          false_positives: result.false_positives,
          false_negatives: result.false_negatives,
          true_negatives: result.true_negatives,
        }[c]
      : 0;
  const cellButton = (c: Cell) => (
    <td className={cell === c ? 'picked' : undefined}>
      <button
        type="button"
        className="link cell"
        aria-pressed={cell === c}
        aria-label={`${CELLS[c]}: ${figure(c)} decisions`}
        onClick={() => setCell(cell === c ? null : c)}
      >
        {count(figure(c))}
      </button>
    </td>
  );

  return (
    <section className="panel backtest" aria-label={`Backtest of ${rule.name}`}>
      <h3>Backtest</h3>
      <div className="row">
        <label>
          Period
          <select
            value={days}
            onChange={(e) => setDays(e.target.value === 'custom' ? 'custom' : Number(e.target.value))}
          >
            <option value={1}>last day</option>
            <option value={7}>last 7 days</option>
            <option value={30}>last 30 days</option>
            <option value="custom">from … to …</option>
          </select>
        </label>
        {days === 'custom' && (
          <>
            <label>
              From
              <input type="datetime-local" value={from} onChange={(e) => setFrom(e.target.value)} required />
            </label>
            <label>
              To
              <input type="datetime-local" value={to} onChange={(e) => setTo(e.target.value)} required />
            </label>
          </>
        )}
        <button type="button" onClick={() => void run()} disabled={busy}>
          {busy ? 'Running…' : 'Run backtest'}
        </button>
      </div>
      {busy && <Spinner label="Replaying decisions…" />}
      {error !== null && <ErrorBox error={error} />}
      {result && (
        <>
          <p data-testid="backtest-summary">
            {count(result.evaluated)} attempts evaluated, {count(result.hits)} hits
            {result.unavailable > 0 ? `, ${count(result.unavailable)} not evaluable` : ''}
            {result.errors > 0 ? `, ${count(result.errors)} errors` : ''}
            {result.truncated ? ' (stopped at the limit)' : ''}.
          </p>
          <table className="matrix" aria-label="Confusion matrix">
            <thead>
              <tr>
                <td />
                <th scope="col">Labeled abuse</th>
                <th scope="col">Labeled legitimate</th>
              </tr>
            </thead>
            <tbody>
              <tr>
                <th scope="row">Rule fires</th>
                {cellButton('true_positives')}
                {cellButton('false_positives')}
              </tr>
              <tr>
                <th scope="row">Rule silent</th>
                {cellButton('false_negatives')}
                {cellButton('true_negatives')}
              </tr>
            </tbody>
          </table>
          <p>
            Precision {result.precision === null ? '—' : `${Math.round(result.precision * 100)} %`} · Recall{' '}
            {result.recall === null ? '—' : `${Math.round(result.recall * 100)} %`}
            <span className="muted small"> · pick a cell to see its decisions</span>
          </p>
          {cell && <CellExamples cell={cell} examples={result.examples[cell]} total={figure(cell)} />}
        </>
      )}
    </section>
  );
}

/** The analysts' own rules (newest first) above the shipped ones, which rarely change. */
function ownFirst(rules: Rule[]): Rule[] {
  const own = rules.filter((r) => r.pack === null).reverse();
  return [...own, ...rules.filter((r) => r.pack !== null)];
}

// ---------------------------------------------------------------------------------------------------
// The page
// ---------------------------------------------------------------------------------------------------

export function RulesPage() {
  const [version, setVersion] = useState(0);
  const [selected, setSelected] = useState<string | null>(null);
  const [days, setDays] = useState<number>(7);
  const [notice, setNotice] = useState('');
  const rules = useLoad(() => need(api.GET('/v1/rules')), [version]);
  const stats = useLoad(() => {
    const to = new Date();
    const from = new Date(to.getTime() - days * DAY);
    return need(
      api.GET('/v1/rules/stats', { params: { query: { from: from.toISOString(), to: to.toISOString() } } }),
    );
  }, [days, version]);
  const hitsOf = (id: string) =>
    stats.state === 'ready' ? stats.data.data.find((h) => h.rule_id === id) : undefined;
  const windowLabel = WINDOWS.find((w) => w.days === days)?.label ?? '';
  const chosen = rules.state === 'ready' ? (rules.data.data.find((r) => r.id === selected) ?? null) : null;

  return (
    <section>
      <div className="page-head">
        <h1>Rules</h1>
        <label className="inline">
          Hit-rate window
          <select value={days} onChange={(e) => setDays(Number(e.target.value))}>
            {WINDOWS.map((w) => (
              <option key={w.days} value={w.days}>
                {w.label}
              </option>
            ))}
          </select>
        </label>
      </div>
      {stats.state === 'error' && <ErrorBox error={stats.error} retry={stats.reload} />}
      {stats.state === 'ready' && (
        <p className="muted" data-testid="window-decisions">
          {count(stats.data.decisions)} decisions in the {windowLabel}.
        </p>
      )}
      <div className="grid-2 rules-grid">
        <Show loaded={rules}>
          {(page) =>
            page.data.length === 0 ? (
              <Empty>
                No rules yet: write the first one beside this list, in shadow mode to watch it first.
              </Empty>
            ) : (
              <div className="rules-table">
                <table className="list" aria-label="Rules">
                  <thead>
                    <tr>
                      <th scope="col">Name</th>
                      <th scope="col">Action</th>
                      <th scope="col">Mode</th>
                      <th scope="col" className="num">
                        Enforced hits
                      </th>
                      <th scope="col" className="num">
                        Shadow hits
                      </th>
                      <th scope="col" className="num">
                        Hit rate
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {ownFirst(page.data).map((rule) => {
                      const hits = hitsOf(rule.id);
                      return (
                        <tr
                          key={rule.id}
                          className={selected === rule.id ? 'selected' : undefined}
                          data-rule={rule.id}
                        >
                          <td>
                            <button
                              type="button"
                              className="link"
                              aria-pressed={selected === rule.id}
                              onClick={() => {
                                setNotice('');
                                setSelected(selected === rule.id ? null : rule.id);
                              }}
                            >
                              {rule.name}
                            </button>
                            <div className="mono small expression">{rule.expression}</div>
                          </td>
                          <td>{rule.action}</td>
                          <td>
                            <span className={`badge mode-${rule.enabled ? rule.mode : 'disabled'}`}>
                              {rule.enabled ? rule.mode : 'disabled'}
                            </span>
                          </td>
                          <td className="num">{hits ? count(hits.enforced_hits) : '…'}</td>
                          <td className="num">{hits ? count(hits.shadow_hits) : '…'}</td>
                          <td className="num" data-testid="hit-rate">
                            {hits ? (
                              <span title={`${count(hits.hits)} of ${count(hits.decisions)} decisions`}>
                                <span className="rate">{percent(hits.hit_rate)}</span>
                                <span className="muted small rate-of"> of {count(hits.decisions)}</span>
                              </span>
                            ) : (
                              '…'
                            )}
                          </td>
                        </tr>
                      );
                    })}
                  </tbody>
                </table>
              </div>
            )
          }
        </Show>
        <RuleEditor
          key={chosen ? `${chosen.id}@${chosen.version}` : 'new'}
          rule={chosen}
          notice={notice}
          saved={(rule, message) => {
            setNotice(message);
            setSelected(rule.id);
            setVersion((n) => n + 1);
          }}
          close={() => {
            setNotice('');
            setSelected(null);
          }}
        />
      </div>
      {chosen && (
        <div className="rule-detail">
          <h2>{chosen.name}</h2>
          <div className="grid-2">
            <ShadowPanel rule={chosen} hits={hitsOf(chosen.id)} windowLabel={windowLabel} />
            <BacktestPanel key={chosen.id} rule={chosen} />
          </div>
        </div>
      )}
    </section>
  );
}

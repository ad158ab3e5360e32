/** Rules: the list, an editor that type-checks the CEL expression as you type (the API's check), backtests. */
import { type FormEvent, useEffect, useState } from 'react';
import { ApiError, api, need, problemMessage, type Schema } from '../api.ts';
import { count, Empty, ErrorBox, Show, Spinner, useLoad } from '../ui.tsx';

type Rule = Schema<'Rule'>;
type Action = Rule['action'];

function useCheck(expression: string): { state: 'idle' | 'checking' | 'ok' | 'bad'; message: string } {
  const [result, setResult] = useState<{ state: 'idle' | 'checking' | 'ok' | 'bad'; message: string }>({
    state: 'idle',
    message: '',
  });
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
      else setResult({ state: 'bad', message: problemMessage(error) });
    }, 350);
    return () => {
      stale = true;
      window.clearTimeout(timer);
    };
  }, [expression]);
  return result;
}

function RuleEditor({ saved }: { saved: () => void }) {
  const [name, setName] = useState('');
  const [expression, setExpression] = useState('');
  const [action, setAction] = useState<Action>('review');
  const [mode, setMode] = useState<'enforce' | 'shadow'>('shadow');
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const check = useCheck(expression);

  async function save(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await need(api.POST('/v1/rules', { body: { name, expression, action, mode, reason } }));
      setName('');
      setExpression('');
      setReason('');
      saved();
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.problem : caught);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="form" onSubmit={save} aria-labelledby="editor-title">
      <h2 id="editor-title">New rule</h2>
      <label>
        Name
        <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={200} />
      </label>
      <label>
        Expression (CEL)
        <textarea
          className="mono"
          value={expression}
          onChange={(e) => setExpression(e.target.value)}
          rows={3}
          spellCheck={false}
          aria-describedby="cel-check"
        />
      </label>
      <p id="cel-check" className={`check check-${check.state}`} role="status" aria-live="polite">
        {check.message}
      </p>
      <div className="row">
        <label>
          Action
          <select value={action} onChange={(e) => setAction(e.target.value as Action)}>
            <option value="review">review</option>
            <option value="challenge">challenge</option>
            <option value="block">block</option>
            <option value="allow">allow</option>
          </select>
        </label>
        <label>
          Mode
          <select value={mode} onChange={(e) => setMode(e.target.value as 'enforce' | 'shadow')}>
            <option value="shadow">shadow (recorded, never acts)</option>
            <option value="enforce">enforce</option>
          </select>
        </label>
      </div>
      <label>
        Reason (shown on decisions)
        <input value={reason} onChange={(e) => setReason(e.target.value)} required maxLength={200} />
      </label>
      {error !== null && <ErrorBox error={error} />}
      <button type="submit" className="primary" disabled={busy || check.state === 'bad'}>
        {busy ? 'Saving…' : 'Save rule'}
      </button>
    </form>
  );
}

type Backtest = Awaited<ReturnType<typeof runBacktest>>;

function runBacktest(ruleId: string, days: number) {
  const to = new Date();
  const from = new Date(to.getTime() - days * 86_400_000);
  return need(
    api.POST('/v1/rules/{id}/backtest', {
      params: { path: { id: ruleId } },
      body: { from: from.toISOString(), to: to.toISOString() },
    }),
  );
}

function BacktestPanel({ rule }: { rule: Rule }) {
  const [days, setDays] = useState(7);
  const [result, setResult] = useState<Backtest | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  async function run() {
    setBusy(true);
    setError(null);
    try {
      setResult(await runBacktest(rule.id, days));
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.problem : caught);
    } finally {
      setBusy(false);
    }
  }
  const trueNegatives = result ? result.labeled.legitimate - result.false_positives : 0;
  return (
    <section className="backtest" aria-label={`Backtest of ${rule.name}`}>
      <div className="row">
        <label>
          Period
          <select value={days} onChange={(e) => setDays(Number(e.target.value))}>
            <option value={1}>last day</option>
            <option value={7}>last 7 days</option>
            <option value={30}>last 30 days</option>
          </select>
        </label>
        <button type="button" onClick={() => void run()} disabled={busy}>
          {busy ? 'Running…' : 'Run backtest'}
        </button>
      </div>
      {busy && <Spinner label="Replaying decisions…" />}
      {error !== null && <ErrorBox error={error} />}
      {result && (
        <>
          <p>
            {count(result.evaluated)} attempts evaluated, {count(result.hits)} hits
            {result.truncated ? ' (stopped at the limit)' : ''}.
          </p>
          <table className="matrix" aria-label="Confusion matrix">
            <thead>
              <tr>
                <th />
                <th scope="col">Labeled abuse</th>
                <th scope="col">Labeled legitimate</th>
              </tr>
            </thead>
            <tbody>
              <tr>
                <th scope="row">Rule fires</th>
                <td>{count(result.true_positives)}</td>
                <td>{count(result.false_positives)}</td>
              </tr>
              <tr>
                <th scope="row">Rule silent</th>
                <td>{count(result.false_negatives)}</td>
                <td>{count(Math.max(0, trueNegatives))}</td>
              </tr>
            </tbody>
          </table>
          <p>
            Precision {result.precision === null ? '—' : `${Math.round(result.precision * 100)} %`} · Recall{' '}
            {result.recall === null ? '—' : `${Math.round(result.recall * 100)} %`}
          </p>
          {result.sample_hits.length > 0 && (
            <p className="mono small">Example hits: {result.sample_hits.slice(0, 5).join(', ')}</p>
          )}
        </>
      )}
    </section>
  );
}

export function RulesPage() {
  const [version, setVersion] = useState(0);
  const [open, setOpen] = useState<string | null>(null);
  const loaded = useLoad(() => need(api.GET('/v1/rules')), [version]);
  return (
    <section>
      <h1>Rules</h1>
      <div className="grid-2">
        <Show loaded={loaded}>
          {(page) =>
            page.data.length === 0 ? (
              <Empty>
                No rules yet: write the first one beside this list, in shadow mode to watch it first.
              </Empty>
            ) : (
              <table className="list" aria-label="Rules">
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Action</th>
                    <th scope="col">Mode</th>
                    <th scope="col">Expression</th>
                  </tr>
                </thead>
                <tbody>
                  {page.data.map((rule) => (
                    <tr key={rule.id}>
                      <td>
                        <button
                          type="button"
                          className="link"
                          onClick={() => setOpen(open === rule.id ? null : rule.id)}
                        >
                          {rule.name}
                        </button>
                        {open === rule.id && <BacktestPanel rule={rule} />}
                      </td>
                      <td>{rule.action}</td>
                      <td>{rule.enabled ? rule.mode : 'disabled'}</td>
                      <td className="mono small">{rule.expression}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )
          }
        </Show>
        <RuleEditor saved={() => setVersion((n) => n + 1)} />
      </div>
    </section>
  );
}

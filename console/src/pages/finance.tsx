/** Finance: reconciliation reports (run one, read its mismatches) and their CSV export. */
import { useState } from 'react';
import { ApiError, api, need, type Schema } from '../api.ts';
import { download } from '../download.ts';
import { count, Empty, ErrorBox, Show, useLoad, when } from '../ui.tsx';

type Reconciliation = Schema<'Reconciliation'>;

function Report({ report }: { report: Reconciliation }) {
  const [error, setError] = useState<unknown>(null);
  async function exportCsv() {
    setError(null);
    const { data, error, response } = await api.GET('/v1/reconciliations/{id}', {
      params: { path: { id: report.id }, query: { format: 'csv' } },
      parseAs: 'text',
    });
    if (error !== undefined) setError(new ApiError(error, response.status).problem);
    else download(data, `${report.id}.csv`);
  }
  const kinds = Object.entries(report.summary?.kinds ?? {});
  return (
    <article className="case" aria-label={`Report ${report.id}`}>
      <div className="page-head">
        <h2>
          Report <span className="mono">{report.id}</span>
        </h2>
        <button type="button" onClick={() => void exportCsv()}>
          Export CSV
        </button>
      </div>
      {error !== null && <ErrorBox error={error} />}
      {kinds.length === 0 ? (
        <p>Every check balanced.</p>
      ) : (
        <table className="list">
          <thead>
            <tr>
              <th scope="col">Check</th>
              <th scope="col">Rows off</th>
              <th scope="col">Difference</th>
            </tr>
          </thead>
          <tbody>
            {kinds.map(([kind, k]) => (
              <tr key={kind}>
                <td>{kind}</td>
                <td className="num">{count(k.rows)}</td>
                <td className="num">
                  {count(k.difference)} {k.unit}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </article>
  );
}

export function FinancePage() {
  const [version, setVersion] = useState(0);
  const [open, setOpen] = useState<string | null>(null);
  const [running, setRunning] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const loaded = useLoad(
    () => need(api.GET('/v1/reconciliations', { params: { query: { limit: 50 } } })),
    [version],
  );

  async function run() {
    setRunning(true);
    setError(null);
    try {
      const report = await need(api.POST('/v1/reconciliations', { body: {} }));
      setOpen(report.id);
      setVersion((n) => n + 1);
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.problem : caught);
    } finally {
      setRunning(false);
    }
  }

  return (
    <section>
      <div className="page-head">
        <h1>Finance: reconciliation</h1>
        <button type="button" className="primary" onClick={() => void run()} disabled={running}>
          {running ? 'Reconciling…' : 'Run a reconciliation now'}
        </button>
      </div>
      {error !== null && <ErrorBox error={error} />}
      <Show loaded={loaded}>
        {(page) => {
          const current = page.data.find((r) => r.id === open);
          return page.data.length === 0 ? (
            <Empty>
              No reconciliation has run yet. Run one now to check the ledger against the counters.
            </Empty>
          ) : (
            <div className="grid-2">
              <table className="list" aria-label="Reports">
                <thead>
                  <tr>
                    <th scope="col">Started</th>
                    <th scope="col">Status</th>
                    <th scope="col">Rows off</th>
                  </tr>
                </thead>
                <tbody>
                  {page.data.map((r) => (
                    <tr key={r.id} className={r.id === open ? 'selected' : ''}>
                      <td>
                        <button type="button" className="link" onClick={() => setOpen(r.id)}>
                          {when(r.started_at)}
                        </button>
                      </td>
                      <td>
                        <span className={`badge badge-${r.status}`}>{r.status}</span>
                      </td>
                      <td className="num">{r.summary ? count(r.summary.mismatched_rows) : '—'}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              {current ? <Report report={current} /> : <Empty>Choose a report to read it.</Empty>}
            </div>
          );
        }}
      </Show>
    </section>
  );
}

/**
 * Finance: discount spend by campaign and day, week or month from the ledger (table, chart, CSV), and
 * reconciliation reports (run one, read its mismatches) with their CSV export.
 */
import { useMemo, useState } from 'react';
import { ApiError, api, need, type Schema } from '../api.ts';
import { Chart, type ChartOption } from '../chart.tsx';
import { download } from '../download.ts';
import { count, Empty, ErrorBox, money, Show, useLoad, when } from '../ui.tsx';

type SpendReport = Schema<'SpendReport'>;
type Period = SpendReport['period'];

const DAY_MS = 86_400_000;
/** The window each period shows by default: about a month of days, a quarter of weeks, a year of months. */
const PERIODS: Record<Period, { label: string; days: number }> = {
  day: { label: 'Day', days: 30 },
  week: { label: 'Week', days: 91 },
  month: { label: 'Month', days: 365 },
};

const dateInput = (d: Date) => d.toISOString().slice(0, 10);

function periodLabel(iso: string, period: Period): string {
  const d = new Date(iso);
  if (period === 'month')
    return d.toLocaleDateString(undefined, { year: 'numeric', month: 'short', timeZone: 'UTC' });
  const day = d.toLocaleDateString(undefined, { dateStyle: 'medium', timeZone: 'UTC' });
  return period === 'week' ? `week of ${day}` : day;
}

function SpendChart({ report, currency }: { report: SpendReport; currency: string }) {
  const option = useMemo<ChartOption>(() => {
    const rows = report.data.filter((r) => r.currency === currency);
    const periods = [...new Set(rows.map((r) => r.period_start))].sort();
    const campaigns = [
      ...new Map(rows.map((r) => [r.campaign_id, r.campaign_name ?? r.campaign_id])).entries(),
    ];
    const digits = new Intl.NumberFormat(undefined, { style: 'currency', currency }).resolvedOptions()
      .maximumFractionDigits;
    const scale = 10 ** (digits ?? 2);
    return {
      animation: false,
      tooltip: { trigger: 'axis' },
      legend: { type: 'scroll', bottom: 0 },
      grid: { left: 60, right: 16, top: 32, bottom: 48 },
      xAxis: { type: 'category', data: periods.map((p) => periodLabel(p, report.period)) },
      yAxis: { type: 'value', name: currency },
      series: campaigns.map(([id, name]) => ({
        type: 'bar',
        stack: 'net',
        barMaxWidth: 56,
        name,
        data: periods.map((p) => {
          const row = rows.find((r) => r.period_start === p && r.campaign_id === id);
          return row ? row.net_minor / scale : 0;
        }),
      })),
    };
  }, [report, currency]);
  const total = report.totals.find((t) => t.currency === currency);
  return (
    <Chart
      option={option}
      label={`Net discount spend in ${currency} by campaign and ${report.period}: ${total ? money(total.net_minor, currency) : 'none'} in the window`}
    />
  );
}

function Spend() {
  const [period, setPeriod] = useState<Period>('day');
  const [to, setTo] = useState(() => dateInput(new Date(Date.now() + DAY_MS)));
  const [from, setFrom] = useState(() => dateInput(new Date(Date.now() - PERIODS.day.days * DAY_MS)));
  const [currency, setCurrency] = useState<string | null>(null);
  const [exporting, setExporting] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const query = { period, from: `${from}T00:00:00Z`, to: `${to}T00:00:00Z` };
  const loaded = useLoad(() => need(api.GET('/v1/finance/spend', { params: { query } })), [period, from, to]);

  function choosePeriod(next: Period) {
    setPeriod(next);
    setFrom(dateInput(new Date(Date.parse(`${to}T00:00:00Z`) - PERIODS[next].days * DAY_MS)));
  }

  async function exportCsv() {
    setExporting(true);
    setError(null);
    const { data, error, response } = await api.GET('/v1/finance/spend', {
      params: { query: { ...query, format: 'csv' } },
      parseAs: 'text',
    });
    setExporting(false);
    if (error !== undefined) setError(new ApiError(error, response.status).problem);
    else download(data, `spend-${period}-${from}-${to}.csv`);
  }

  return (
    <section aria-labelledby="spend-title">
      <div className="page-head">
        <h2 id="spend-title">Discount spend by campaign</h2>
        <button type="button" onClick={() => void exportCsv()} disabled={exporting}>
          {exporting ? 'Exporting…' : 'Export spend CSV'}
        </button>
      </div>
      <div className="filters">
        <label>
          Period
          <select value={period} onChange={(e) => choosePeriod(e.target.value as Period)}>
            {Object.entries(PERIODS).map(([key, p]) => (
              <option key={key} value={key}>
                {p.label}
              </option>
            ))}
          </select>
        </label>
        <label>
          From (UTC)
          <input type="date" value={from} onChange={(e) => e.target.value && setFrom(e.target.value)} />
        </label>
        <label>
          To (UTC, not included)
          <input type="date" value={to} onChange={(e) => e.target.value && setTo(e.target.value)} />
        </label>
      </div>
      {error !== null && <ErrorBox error={error} />}
      <Show loaded={loaded}>
        {(report) => {
          if (report.data.length === 0)
            return (
              <Empty>
                No discount was spent in this window. Redemptions appear here the moment they are made; choose
                a longer window to look further back.
              </Empty>
            );
          const currencies = report.totals.map((t) => t.currency);
          const shown = currency && currencies.includes(currency) ? currency : (currencies[0] as string);
          return (
            <>
              <div className="page-head">
                <p className="muted">
                  Net in the window:{' '}
                  {report.totals.map((t) => (
                    <strong key={t.currency} data-testid={`spend-total-${t.currency}`}>
                      {money(t.net_minor, t.currency)}{' '}
                    </strong>
                  ))}
                </p>
                {currencies.length > 1 && (
                  <label className="inline">
                    Chart currency
                    <select value={shown} onChange={(e) => setCurrency(e.target.value)}>
                      {currencies.map((c) => (
                        <option key={c}>{c}</option>
                      ))}
                    </select>
                  </label>
                )}
              </div>
              <SpendChart report={report} currency={shown} />
              <table className="list" aria-label="Spend by campaign">
                <thead>
                  <tr>
                    <th scope="col">{PERIODS[report.period].label}</th>
                    <th scope="col">Campaign</th>
                    <th scope="col">Spent</th>
                    <th scope="col">Rolled back</th>
                    <th scope="col">Net</th>
                    <th scope="col">Redemptions</th>
                  </tr>
                </thead>
                <tbody>
                  {[...report.data].reverse().map((r) => (
                    <tr key={`${r.period_start}:${r.campaign_id}:${r.currency}`}>
                      <td>{periodLabel(r.period_start, report.period)}</td>
                      <td className="details">
                        {r.campaign_name ?? <span className="mono">{r.campaign_id}</span>}
                      </td>
                      <td className="num">{money(r.spent_minor, r.currency)}</td>
                      <td className="num">{r.reversed_minor ? money(-r.reversed_minor, r.currency) : '—'}</td>
                      <td className="num">{money(r.net_minor, r.currency)}</td>
                      <td className="num">
                        {count(r.redemptions)}
                        {r.reversals > 0 && (
                          <span className="muted"> ({count(r.reversals)} rolled back)</span>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          );
        }}
      </Show>
    </section>
  );
}

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
  return (
    <section>
      <h1>Finance</h1>
      <Spend />
      <Reconciliations />
    </section>
  );
}

function Reconciliations() {
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
    <section className="spaced">
      <div className="page-head">
        <h2>Reconciliation</h2>
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

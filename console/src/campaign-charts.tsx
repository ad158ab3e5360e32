/**
 * One campaign's charts: activity over time, the share of redemptions by new accounts and budget burn
 * (database), attempts by outcome (this node).
 */
import { useMemo, useState } from 'react';
import { api, need, type Schema } from './api.ts';
import { Chart, type ChartOption } from './chart.tsx';
import { loadSummary, sumBy } from './metrics.ts';
import { count, Empty, money, Show, useLoad } from './ui.tsx';

type Campaign = Schema<'Campaign'>;
const WINDOWS = {
  hour: { label: 'Last hour', ms: 3_600_000, bucket: 'minute' },
  day: { label: 'Last 24 hours', ms: 86_400_000, bucket: 'hour' },
  month: { label: 'Last 30 days', ms: 30 * 86_400_000, bucket: 'day' },
} as const;

export function CampaignCharts({ campaign }: { campaign: Campaign }) {
  const [window, setWindow] = useState<keyof typeof WINDOWS>('hour');
  const [tick, setTick] = useState(0);
  const series = useLoad(() => {
    const w = WINDOWS[window];
    const to = new Date(Date.now() + 60_000);
    return need(
      api.GET('/v1/campaigns/{id}/series', {
        params: {
          path: { id: campaign.id },
          query: {
            from: new Date(to.getTime() - w.ms).toISOString(),
            to: to.toISOString(),
            bucket: w.bucket,
          },
        },
      }),
    );
  }, [campaign.id, window, tick, campaign.redemptions_used]);
  const summary = useLoad(() => loadSummary(campaign.id), [campaign.id, tick, campaign.redemptions_used]);

  return (
    <section className="charts" aria-label="Charts">
      <div className="page-head">
        <h2>Activity</h2>
        <label className="inline">
          Window
          <select value={window} onChange={(e) => setWindow(e.target.value as keyof typeof WINDOWS)}>
            {Object.entries(WINDOWS).map(([key, w]) => (
              <option key={key} value={key}>
                {w.label}
              </option>
            ))}
          </select>
        </label>
        <button type="button" onClick={() => setTick((n) => n + 1)}>
          Refresh
        </button>
      </div>
      <div className="grid-2">
        <Show loaded={series}>{(data) => <ActivityCharts data={data} campaign={campaign} />}</Show>
        <Show loaded={summary}>{(data) => <OutcomeCharts summary={data} campaignId={campaign.id} />}</Show>
      </div>
    </section>
  );
}

type Series = Schema<'CampaignSeries'>;

function ActivityCharts({ data, campaign }: { data: Series; campaign: Campaign }) {
  const activity = useMemo<ChartOption>(
    () => ({
      animation: false,
      tooltip: { trigger: 'axis' },
      legend: { top: 0 },
      grid: { left: 40, right: 16, top: 36, bottom: 28 },
      xAxis: { type: 'time', min: data.from, max: data.to },
      yAxis: { type: 'value', minInterval: 1 },
      series: [
        { name: 'Redemptions', type: 'bar', data: data.points.map((p) => [p.at, p.redemptions]) },
        { name: 'Rollbacks', type: 'bar', data: data.points.map((p) => [p.at, p.rollbacks]) },
        { name: 'Risk blocked', type: 'bar', data: data.points.map((p) => [p.at, p.risk_blocked]) },
        { name: 'Risk challenged', type: 'bar', data: data.points.map((p) => [p.at, p.risk_challenged]) },
      ],
    }),
    [data],
  );
  const burn = useMemo<ChartOption>(() => {
    let spent = data.spent_before_minor;
    const line = [[data.from, spent] as [string, number]];
    for (const p of data.points) {
      spent += p.spent_minor;
      line.push([p.at, spent]);
    }
    line.push([data.to, spent]);
    const currency = data.currency;
    return {
      animation: false,
      tooltip: { trigger: 'axis', valueFormatter: (v: unknown) => money(Number(v), currency) },
      legend: { top: 0 },
      grid: { left: 72, right: 16, top: 36, bottom: 28 },
      xAxis: { type: 'time', min: data.from, max: data.to },
      yAxis: { type: 'value', axisLabel: { formatter: (v: number) => money(v, currency) } },
      series: [
        { name: 'Spent', type: 'line', step: 'end', areaStyle: {}, data: line },
        ...(data.budget_minor !== null
          ? [
              {
                name: 'Budget',
                type: 'line',
                symbol: 'none',
                lineStyle: { type: 'dashed' },
                data: [
                  [data.from, data.budget_minor],
                  [data.to, data.budget_minor],
                ],
              },
            ]
          : []),
      ],
    };
  }, [data]);
  const share = useMemo<ChartOption>(
    () => ({
      animation: false,
      tooltip: {
        trigger: 'axis',
        valueFormatter: (v: unknown) => `${Number(v).toFixed(0)} %`,
      },
      legend: { top: 0 },
      grid: { left: 48, right: 16, top: 36, bottom: 28 },
      xAxis: { type: 'time', min: data.from, max: data.to },
      yAxis: { type: 'value', min: 0, max: 100, axisLabel: { formatter: '{value} %' } },
      series: [
        {
          name: `Accounts younger than ${data.new_account_hours} h`,
          type: 'line',
          step: 'middle',
          areaStyle: {},
          // Buckets with no account age sent say nothing about the share: left out, not drawn as 0 %.
          data: data.points
            .filter((p) => p.account_age_known > 0)
            .map((p) => [p.at, (100 * p.new_accounts) / p.account_age_known]),
        },
      ],
    }),
    [data],
  );
  const made = data.points.reduce((n, p) => n + p.redemptions, 0);
  const newAccounts = data.points.reduce((n, p) => n + p.new_accounts, 0);
  const known = data.points.reduce((n, p) => n + p.account_age_known, 0);
  const sharePercent = known > 0 ? Math.round((100 * newAccounts) / known) : null;
  return (
    <div>
      <h3>Redemptions, rollbacks and risk refusals</h3>
      <p className="muted" data-testid="window-redemptions">
        {count(made)} redemptions in this window
      </p>
      {data.points.length === 0 ? (
        <Empty>No redemptions, rollbacks or refusals in this window.</Empty>
      ) : (
        <Chart option={activity} label={`${made} redemptions in the window`} />
      )}
      <h3>New-account share</h3>
      <p className="muted" data-testid="new-account-share">
        {sharePercent === null
          ? 'No redemption in this window sent the account’s creation time.'
          : `${sharePercent} % of redemptions (${count(newAccounts)} of ${count(known)} with an account age) by accounts younger than ${data.new_account_hours} hours`}
      </p>
      {known > 0 && (
        <Chart
          option={share}
          label={`${sharePercent} % of redemptions by new accounts in the window`}
          height={180}
        />
      )}
      <h3>Budget burn</h3>
      <Chart
        option={burn}
        label={`Spent ${money(campaign.spent_minor, campaign.currency)}${
          campaign.budget_minor !== null ? ` of ${money(campaign.budget_minor, campaign.currency)}` : ''
        }`}
      />
    </div>
  );
}

function OutcomeCharts({
  summary,
  campaignId,
}: {
  summary: Awaited<ReturnType<typeof loadSummary>>;
  campaignId: string;
}) {
  const validations = sumBy(summary, 'promoguard_validations_total', 'outcome', { campaign_id: campaignId });
  const refusals = new Map<string, number>();
  for (const name of ['promoguard_redemptions_total', 'promoguard_validations_total']) {
    for (const [reason, n] of sumBy(summary, name, 'reason', { campaign_id: campaignId })) {
      if (reason === '' || n === 0) continue;
      refusals.set(reason, (refusals.get(reason) ?? 0) + n);
    }
  }
  const bars = (entries: [string, number][], name: string): ChartOption => ({
    animation: false,
    tooltip: {},
    grid: { left: 150, right: 16, top: 8, bottom: 24 },
    xAxis: { type: 'value', minInterval: 1 },
    yAxis: { type: 'category', data: entries.map(([k]) => k) },
    series: [{ name, type: 'bar', data: entries.map(([, v]) => v) }],
  });
  const v = [...validations.entries()].filter(([, n]) => n > 0);
  const r = [...refusals.entries()].sort((a, b) => b[1] - a[1]);
  return (
    <div>
      <h3>Validations by outcome</h3>
      <p className="muted">Counted by this node since it started.</p>
      {v.length === 0 ? (
        <Empty>No validations of this campaign’s codes yet.</Empty>
      ) : (
        <Chart option={bars(v, 'Validations')} label="Validations by outcome" height={160} />
      )}
      <h3>Refusals by reason</h3>
      {r.length === 0 ? (
        <Empty>Nothing refused yet.</Empty>
      ) : (
        <>
          <Chart option={bars(r, 'Refusals')} label="Refusals by reason" height={200} />
          <ul className="plain" aria-label="Refusals by reason">
            {r.map(([reason, n]) => (
              <li key={reason}>
                {reason}: {count(n)}
              </li>
            ))}
          </ul>
        </>
      )}
    </div>
  );
}

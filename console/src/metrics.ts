/** Reading the JSON metrics summary (GET /v1/metrics/summary): sums by label, quantiles of histograms. */
import { api, need } from './api.ts';

export type Summary = Awaited<ReturnType<typeof loadSummary>>;
type Metric = Summary['metrics'][number];

export function loadSummary(campaignId?: string) {
  return need(
    api.GET('/v1/metrics/summary', { params: { query: campaignId ? { campaign_id: campaignId } : {} } }),
  );
}

export function metric(summary: Summary, name: string): Metric | undefined {
  return summary.metrics.find((m) => m.name === name);
}

/** The sum of a metric's samples matching `where`, grouped by the label `by` (or all under ''). */
export function sumBy(
  summary: Summary,
  name: string,
  by: string | null,
  where: Record<string, string> = {},
): Map<string, number> {
  const out = new Map<string, number>();
  for (const sample of metric(summary, name)?.samples ?? []) {
    // Histograms are read by quantile(), not summed.
    if (sample.series !== undefined) continue;
    if (!Object.entries(where).every(([k, v]) => sample.labels[k] === v)) continue;
    const key = by === null ? '' : (sample.labels[by] ?? '');
    out.set(key, (out.get(key) ?? 0) + sample.value);
  }
  return out;
}

export function total(summary: Summary, name: string, where: Record<string, string> = {}): number {
  return sumBy(summary, name, null, where).get('') ?? 0;
}

/** A quantile of a histogram over all its label sets, from its cumulative buckets (upper bound of the bucket). */
export function quantile(summary: Summary, name: string, q: number): number | null {
  const buckets = new Map<number, number>();
  for (const sample of metric(summary, name)?.samples ?? []) {
    if (sample.series !== `${name}_bucket`) continue;
    const le = sample.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(sample.labels.le);
    buckets.set(le, (buckets.get(le) ?? 0) + sample.value);
  }
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  const all = sorted.at(-1)?.[1] ?? 0;
  if (all === 0) return null;
  const found = sorted.find(([, n]) => n >= q * all);
  return found ? found[0] : null;
}

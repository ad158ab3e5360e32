/**
 * The Prometheus registry, built from the catalogue: one prom-client metric per definition, typed by
 * its labels, plus Node's process metrics. Counters and histograms are this node's; the database gauges
 * are filled on scrape from one reading shared by all of them and kept for a few seconds, so a scrape
 * costs at most one round of queries however many gauges it reads, and requests never pay for it.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, type Metric, Registry } from 'prom-client';
import { METRICS } from './catalogue.js';

type Definitions = (typeof METRICS)[number];
type Of<K extends Definitions['type']> = Extract<Definitions, { type: K }>;
type LabelsOf<D extends Definitions> = { [L in D['labels'][number]]: string };

export type CounterName = Of<'counter'>['name'];
export type HistogramName = Of<'histogram'>['name'];
export type NodeGaugeName = Extract<Of<'gauge'>, { source: 'node' }>['name'];
export type DatabaseGaugeName = Extract<Of<'gauge'>, { source: 'database' }>['name'];
export type Labels<N extends Definitions['name']> = LabelsOf<Extract<Definitions, { name: N }>>;

/** One database gauge's series: its labels and value. */
export interface GaugeSample {
  labels: Record<string, string>;
  value: number;
}

/** What the database reports on a scrape: every series of every database gauge. */
export type DatabaseReading = Partial<Record<DatabaseGaugeName, GaugeSample[]>>;

export interface MetricsOptions {
  /** Campaigns that get a `campaign_id` label of their own; later ones share `other`. */
  campaignLabelLimit: number;
  /** Reads the database gauges; absent = they are not exported (no database to read). */
  readDatabase?: () => Promise<DatabaseReading>;
  /** How long one database reading serves scrapes. */
  databaseReadingMs?: number;
  /** Called when a database reading fails (the scrape then serves the last good one). */
  onReadError?: (err: unknown) => void;
  /** Sets the node gauges that are read rather than counted (dependencies, pool), just before a scrape. */
  beforeScrape?: () => void;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly metrics = new Map<string, Metric>();
  private readonly campaigns = new Set<string>();
  private reading: { at: number; value: DatabaseReading } | null = null;
  private pending: Promise<DatabaseReading> | null = null;

  constructor(private readonly options: MetricsOptions) {
    collectDefaultMetrics({ register: this.registry });
    // Gauges that prom-client names like counters: Prometheus tooling (promtool check metrics) refuses
    // them, and the handle counts they give are for debugging a process, not for operating it.
    for (const name of [
      'nodejs_active_handles_total',
      'nodejs_active_requests_total',
      'nodejs_active_resources_total',
    ])
      this.registry.removeSingleMetric(name);
    for (const def of METRICS) {
      const common = {
        name: def.name,
        help: def.help,
        labelNames: [...def.labels],
        registers: [this.registry],
      };
      if (def.type === 'counter') this.metrics.set(def.name, new Counter(common));
      else if (def.type === 'histogram')
        this.metrics.set(def.name, new Histogram({ ...common, buckets: [...(def.buckets ?? [])] }));
      else if (def.source === 'node') this.metrics.set(def.name, new Gauge(common));
      else if (options.readDatabase) {
        const self = this;
        this.metrics.set(
          def.name,
          new Gauge({
            ...common,
            async collect() {
              this.reset();
              const reading = await self.databaseReading();
              for (const sample of reading[def.name as DatabaseGaugeName] ?? [])
                this.set(sample.labels, sample.value);
            },
          }),
        );
      }
    }
  }

  /**
   * The `campaign_id` label of a campaign: its id for the first campaigns this node sees, `other` past
   * the limit, so a flood of campaigns cannot grow the series without bound.
   */
  campaignLabel(campaignId: string | null | undefined): string {
    if (!campaignId) return 'none';
    if (this.campaigns.has(campaignId)) return campaignId;
    if (this.campaigns.size >= this.options.campaignLabelLimit) return 'other';
    this.campaigns.add(campaignId);
    return campaignId;
  }

  inc<N extends CounterName>(name: N, labels: Labels<N>, value = 1): void {
    (this.metrics.get(name) as Counter).inc(labels as Record<string, string>, value);
  }

  observe<N extends HistogramName>(name: N, labels: Labels<N>, seconds: number): void {
    (this.metrics.get(name) as Histogram).observe(labels as Record<string, string>, seconds);
  }

  set<N extends NodeGaugeName>(name: N, labels: Labels<N>, value: number): void {
    (this.metrics.get(name) as Gauge).set(labels as Record<string, string>, value);
  }

  /** The promoguard_* metrics as values (what a scrape would read), for the console's panels. */
  async summary(): Promise<
    {
      name: string;
      type: string;
      help: string;
      samples: { labels: Record<string, string>; value: number }[];
    }[]
  > {
    this.options.beforeScrape?.();
    const all = await this.registry.getMetricsAsJSON();
    return all
      .filter((m) => m.name.startsWith('promoguard_'))
      .map((m) => ({
        name: m.name,
        type: String(m.type),
        help: m.help,
        samples: m.values.map((v) => ({
          labels: Object.fromEntries(Object.entries(v.labels).map(([k, l]) => [k, String(l)])),
          value: v.value,
          ...('metricName' in v && typeof v.metricName === 'string' ? { series: v.metricName } : {}),
        })),
      }));
  }

  /** The text exposition format, and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    this.options.beforeScrape?.();
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  private databaseReading(): Promise<DatabaseReading> {
    const read = this.options.readDatabase;
    if (!read) return Promise.resolve({});
    const fresh = this.reading && Date.now() - this.reading.at < (this.options.databaseReadingMs ?? 10_000);
    if (fresh && this.reading) return Promise.resolve(this.reading.value);
    // Gauges collected by one scrape share one reading.
    this.pending ??= read()
      .then((value) => {
        this.reading = { at: Date.now(), value };
        return value;
      })
      .catch((err: unknown) => {
        this.options.onReadError?.(err);
        return this.reading?.value ?? {};
      })
      .finally(() => {
        this.pending = null;
      });
    return this.pending;
  }
}

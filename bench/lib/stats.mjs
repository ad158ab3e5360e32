/** Latency percentiles (exact, from every sample), medians and number formatting. */

export class LatencyRecorder {
  constructor(initial = 65_536) {
    this.values = new Float64Array(initial);
    this.count = 0;
  }

  record(ms) {
    if (this.count === this.values.length) {
      const bigger = new Float64Array(this.values.length * 2);
      bigger.set(this.values);
      this.values = bigger;
    }
    this.values[this.count++] = ms;
  }

  summary() {
    if (this.count === 0) return { count: 0, p50: null, p90: null, p99: null, max: null, mean: null };
    const sorted = this.values.slice(0, this.count).sort();
    let sum = 0;
    for (const v of sorted) sum += v;
    return {
      count: this.count,
      p50: round(percentile(sorted, 50)),
      p90: round(percentile(sorted, 90)),
      p99: round(percentile(sorted, 99)),
      max: round(sorted[sorted.length - 1]),
      mean: round(sum / this.count),
    };
  }
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export function median(values) {
  const xs = values.filter((v) => typeof v === 'number' && Number.isFinite(v)).sort((a, b) => a - b);
  if (xs.length === 0) return null;
  const mid = Math.floor(xs.length / 2);
  return xs.length % 2 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2;
}

export function round(x, digits = 3) {
  if (x === null || x === undefined || !Number.isFinite(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

const grouped = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export const fmt = {
  int: (x) => (x === null || x === undefined ? '—' : grouped.format(x)),
  ms: (x) => (x === null || x === undefined ? '—' : x < 10 ? `${x.toFixed(1)} ms` : `${Math.round(x)} ms`),
  pct: (x) => (x === null || x === undefined ? '—' : `${Math.round(x * 100)}%`),
  mb: (bytes) => (bytes === null || bytes === undefined ? '—' : `${Math.round(bytes / 1024 / 1024)} MB`),
};

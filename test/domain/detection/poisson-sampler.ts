import type { Rng } from '../../../src/simulate/prng.js';

/**
 * Poisson draws by inversion of a precomputed CDF (binary search): exact up to 1e-15 of tail mass and
 * a few comparisons per draw at any rate, so long simulated runs stay fast.
 */
export function poissonSampler(lambda: number, rng: Rng): () => number {
  const cdf: number[] = [];
  let p = Math.exp(-lambda);
  let c = 0;
  for (let x = 0; c < 1 - 1e-15 && x < 100_000; x++) {
    c += p;
    cdf.push(c);
    p = (p * lambda) / (x + 1);
  }
  return () => {
    const u = rng.next();
    let lo = 0;
    let hi = cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cdf[mid] as number) > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
}

export function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] as number;
}

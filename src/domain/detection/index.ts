/**
 * Streaming abuse detectors: the pure core. Events (redemptions, validations) are counted per key
 * (campaign, partner, code, address block) in fixed intervals, or their distinct instruments, devices
 * or accounts are counted, and a Poisson CUSUM per key over its own adaptive baseline raises one alarm
 * per episode when the rate rises well above it, with declared peaks (flash sales) allowed for. No I/O,
 * no clock, no randomness: the caller passes times in ms and persists the JSON snapshots.
 */

export { type AddressBlocks, addressBlockKeys, addressBlocks } from './address-blocks.js';
export {
  DEFAULT_DISTINCT,
  type DistinctOptions,
  DistinctSketch,
  type DistinctSketchJson,
  distinctOptions,
  hashValue,
  KeyedDistinctDetectors,
  type KeyedDistinctOptionsInput,
  type KeyedDistinctSnapshot,
} from './distinct.js';
export {
  DEFAULT_IDLE_INTERVALS,
  DEFAULT_MAX_KEYS,
  type KeyedAlarm,
  KeyedDetectors,
  type KeyedDetectorsSnapshot,
  type KeyedOptions,
  type KeyedOptionsInput,
  type KeyedStats,
  type KeyInspection,
  keyedOptions,
} from './keyed-detectors.js';
export {
  type ArlQuery,
  baselineRate,
  type CusumAlarm,
  type CusumEpisode,
  type CusumRun,
  closeEmptyIntervals,
  closeInterval,
  copyPoissonCusumState,
  DEFAULT_POISSON_CUSUM,
  newPoissonCusumState,
  type PlannedPeak,
  type PoissonCusumConfig,
  type PoissonCusumState,
  poissonCusumArl,
  poissonCusumConfig,
  referenceValue,
  setPlannedPeaks,
  thresholdForArl,
} from './poisson-cusum.js';

/** What every service receives: the store, the clock and the outbox relay to wake after a commit. */
import type { Kysely } from 'kysely';
import type { Telemetry } from '../events/telemetry.js';
import type { Clock } from '../lib/clock.js';
import type { Metrics } from '../metrics/registry.js';
import type { Database } from '../store/schema.js';

export interface ServiceContext {
  db: Kysely<Database>;
  clock: Clock;
  /** Called after a transaction that wrote outbox rows commits, so they are delivered at once. */
  afterCommit(): void;
  /** This node's Prometheus metrics (absent in tests that build a context by hand). */
  metrics?: Metrics;
  /** Every attempt this node serves, for in-process listeners (absent in hand-built contexts). */
  telemetry?: Telemetry;
}

/** Who asked for a change, for the audit log: an API key id or `cli`. */
export type Actor = string;

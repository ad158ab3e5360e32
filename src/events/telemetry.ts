/**
 * Telemetry: one record per attempt this node served (a validation, a redemption, a rollback, a
 * conversion), handed to in-process listeners — the Prometheus counters, the per-campaign statistics,
 * the stream detectors. Unlike outbox events it is not transactional and records refusals too: it
 * says what was asked and answered, not what changed. A listener must be cheap and must not throw
 * (one that does is skipped for that record, never the caller's answer).
 */

export type AttemptKind = 'validation' | 'redemption' | 'rollback' | 'conversion';

export type AttemptOutcome =
  | 'valid'
  | 'invalid'
  | 'redeemed'
  | 'replayed'
  | 'refused'
  | 'challenged'
  | 'limited'
  | 'rolled_back'
  | 'converted';

export interface Attempt {
  kind: AttemptKind;
  at: Date;
  outcome: AttemptOutcome;
  /** The refusal reason (or `too_many_requests`'s `locked` / `rate_limited`); null otherwise. */
  reason: string | null;
  campaignId: string | null;
  codeId: string | null;
  /** The code's generated batch, when it has one (guessing waves are counted per batch). */
  batchId: string | null;
  partner: string | null;
  /** Whether the code can be used once at most (its own rate and distinct counts say nothing then). */
  codeSingleUse?: boolean | null;
  customerId: string;
  /** Discount granted (redeemed), returned (rolled back) or the coupon's amount (converted). */
  amountMinor: number;
  currency: string | null;
  /** Hours since the account was created, when the caller said. */
  accountAgeHours: number | null;
  /** Keyed hashes of the request's identifiers (never raw values). */
  ipKey: string | null;
  deviceKey: string | null;
  paymentKey: string | null;
  /**
   * The client's address blocks as text (IPv4 /24; IPv6 /48 and /32), for the refusal-wave detector:
   * coarse enough to name a network, never the address itself.
   */
  addressBlocks?: string[];
  /** The redemption made (outcome `redeemed`), and the keyed hash of its shipping address. */
  redemptionId?: string | null;
  shippingKey?: string | null;
  /** The risk decision, when rules ran. */
  decision: { action: string; rules: { id: string; mode: string; action: string }[] } | null;
  /** Whether the caller was a storefront (customer token). */
  storefront: boolean;
  durationMs: number;
}

export type AttemptListener = (attempt: Attempt) => void;

export class Telemetry {
  private readonly listeners: AttemptListener[] = [];
  /** Listener failures, kept for the log and the tests. */
  failures = 0;

  constructor(private readonly onFailure: (err: unknown) => void = () => {}) {}

  on(listener: AttemptListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  emit(attempt: Attempt): void {
    for (const listener of this.listeners) {
      try {
        listener(attempt);
      } catch (err) {
        this.failures++;
        this.onFailure(err);
      }
    }
  }
}

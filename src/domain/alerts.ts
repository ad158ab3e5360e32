/**
 * What a streaming detector reports: the contract between detection (which raises alerts) and
 * remediation (which reacts to them by policy). An alert is published as the `alert.raised` event;
 * remediation subscribes to that event, never to a detector directly, so the two can run on
 * different nodes and be replayed from the stream.
 */

export const ALERT_KINDS = [
  /** Redemptions per code, campaign or partner well above the key's own baseline (a leak). */
  'redemption_spike',
  /** Distinct payment instruments, devices or new accounts per code or campaign above baseline. */
  'distinct_spike',
  /** Refused validations against one campaign or batch across many addresses (spread guessing). */
  'refusal_wave',
  /** One person, device or address redeeming and rolling back again and again. */
  'rollback_cycle',
  /** One person, device or address placing many small orders (free-shipping splitting). */
  'order_splitting',
] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

export const ALERT_SCOPE_TYPES = [
  'code',
  'campaign',
  'partner',
  'batch',
  'address_block',
  'person',
  'device',
  'address',
] as const;
export type AlertScopeType = (typeof ALERT_SCOPE_TYPES)[number];

export const ALERT_SEVERITIES = ['page', 'ticket'] as const;
export type AlertSeverity = (typeof ALERT_SEVERITIES)[number];

/** What the alert is about; the ids a remediation needs to act on it, where they are known. */
export interface AlertScope {
  type: AlertScopeType;
  /** The key's value: a code, campaign id, partner name, batch id, address block, person id … */
  id: string;
  campaignId?: string;
  partner?: string;
  batchId?: string;
}

/**
 * An alert as detection hands it over. The `alert.raised` event's payload is the same in snake_case
 * (`alert_id`, `scope.campaign_id`, `interval_seconds`, `triggered_by_event_id` …), as every payload.
 */
export interface AlertRaised {
  alertId: string;
  kind: AlertKind;
  scope: AlertScope;
  severity: AlertSeverity;
  /** What was seen in the detector's interval, and what the key's baseline expected. */
  observed: number;
  expected: number;
  intervalSeconds: number;
  /** The event whose arrival crossed the threshold, and when it committed (detection latency M8). */
  triggeredByEventId: string | null;
  triggeredAt: string;
  raisedAt: string;
}

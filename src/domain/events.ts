/** Domain events as they leave the outbox. Consumers deduplicate by `id`: delivery is at least once. */
export const EVENT_TYPES = [
  'campaign.created',
  'campaign.updated',
  'campaign.paused',
  'campaign.resumed',
  'campaign.status_changed',
  'code.created',
  'code.batch_generated',
  'code.imported',
  'code.revoked',
  'code.bulk_revoked',
  'person.split',
  'redemption.created',
  'redemption.rolled_back',
  'redemption.held',
  'review.approved',
  'review.rejected',
  'points.program_created',
  'points.credited',
  'points.debited',
  'points.converted',
  'points.refunded',
  'approval.requested',
  'approval.approved',
  'approval.rejected',
  'approval.expired',
  'redemption.outcome_recorded',
  'webhook.created',
  'webhook.updated',
  'webhook.deleted',
  'webhook.secret_rotated',
  'webhook.disabled',
  'alert.raised',
  'remediation.applied',
  'remediation.lifted',
  'alert.acknowledged',
  'alert.resolved',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface DomainEvent {
  id: string;
  type: EventType;
  aggregateId: string;
  payload: unknown;
  createdAt: Date;
}

/**
 * The version of the event envelope and payloads as published (NATS, webhooks). Adding an optional
 * field keeps it; removing or changing a field raises it.
 */
export const EVENT_SCHEMA_VERSION = 1;

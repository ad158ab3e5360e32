// Writes schemas/events/<type>.json: the JSON Schema of each event as published on NATS (the envelope
// of src/events/wire.ts and the payload's top-level fields as the services and SQL functions write
// them). Nested records (a campaign, a redemption row) are described by their identifying fields and
// may carry more. test/events/event-schemas.test.ts checks the files match this script and validates
// real emitted events against them. Run: node scripts/event-schemas.mjs
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const VERSION = 1;
const str = { type: 'string' };
const nullableStr = { type: ['string', 'null'] };
const int = { type: 'integer' };
const actor = { type: ['string', 'null'], description: 'who made the change (an API key id), when known' };
const record = (description, required = ['id']) => ({
  type: 'object',
  description,
  required,
  properties: Object.fromEntries(required.map((k) => [k, str])),
  additionalProperties: true,
});
const redemptionRow = record('the redemption row (snake_case columns, without the stored request context)', [
  'id',
  'campaign_id',
  'status',
]);
const remediationFields = {
  remediation_id: str,
  policy_id: str,
  alert_id: str,
  alert_kind: str,
  action: str,
  target: record('what it acts on: type, campaign_id, partner, batch_id, code_id', ['type']),
  params: { type: 'object' },
  dry_run: { type: 'boolean' },
  change: { type: 'object', description: 'the exact change made (dry run: that would have been made)' },
  expires_at: str,
  actor: { type: 'string', description: 'policy:<id>, or the key that lifted it' },
  reason: nullableStr,
};
const statusChange = { from: str, to: str, actor, reason: nullableStr };

/** type -> [description, payload properties, required] */
export const PAYLOADS = {
  'campaign.created': [
    'a campaign was created',
    { campaign: record('the campaign (camelCase fields)'), actor },
    ['campaign'],
  ],
  'campaign.updated': [
    "a campaign's terms changed",
    { campaign: record('the campaign after the change'), actor },
    ['campaign'],
  ],
  'campaign.paused': ['a campaign was paused', statusChange, ['from', 'to']],
  'campaign.resumed': ['a paused campaign was resumed', statusChange, ['from', 'to']],
  'campaign.status_changed': [
    'a campaign changed status otherwise (e.g. ended)',
    statusChange,
    ['from', 'to'],
  ],
  'code.created': [
    'one code was added to a campaign',
    { campaign_id: str, code_id: str, actor },
    ['campaign_id', 'code_id'],
  ],
  'code.batch_generated': [
    'a batch of random codes was generated',
    { campaign_id: str, batch_id: str, count: int, prefix: str, random_length: int, actor },
    ['campaign_id', 'batch_id', 'count', 'prefix', 'random_length'],
  ],
  'code.imported': ['codes were imported', { campaign_id: str, count: int, actor }, ['campaign_id', 'count']],
  'code.revoked': [
    'a code was revoked',
    { campaign_id: str, code_id: str, actor, reason: nullableStr },
    ['campaign_id', 'code_id'],
  ],
  'code.bulk_revoked': [
    "a campaign's codes (or one partner's) were revoked at once",
    { campaign_id: str, partner: nullableStr, revoked: int, actor, reason: nullableStr },
    ['campaign_id', 'revoked'],
  ],
  'person.split': [
    'an analyst split linked accounts that are not one person: the named customers left for a new person, and the identifiers both sides shared stopped linking',
    {
      person_id: str,
      new_person_id: str,
      customer_ids: { type: 'array', items: str, description: 'the accounts that moved to the new person' },
      unlinked: {
        type: 'integer',
        description: 'identifiers both sides shared, which link nobody from now on',
      },
      actor,
      reason: nullableStr,
    },
    ['person_id', 'new_person_id', 'customer_ids', 'unlinked'],
  ],
  'redemption.created': ['a code was redeemed', { redemption: redemptionRow }, ['redemption']],
  'redemption.rolled_back': ['a redemption was rolled back', { redemption: redemptionRow }, ['redemption']],
  'redemption.held': [
    'an earlier redemption was put on hold for review after it was made: a review rule with hold_with held a later one of the same code or campaign (a ring, a flood); a shop holds the order until the review is decided',
    {
      redemption: redemptionRow,
      held_with: { type: 'string', description: 'the redemption whose hold brought this one along' },
      hold_with: { type: 'string', enum: ['code_new_accounts_24h', 'campaign_new_accounts_1h'] },
      rule_ids: { type: 'array', items: str, description: 'the enforced review rules that held it' },
    },
    ['redemption', 'held_with', 'hold_with', 'rule_ids'],
  ],
  'webhook.created': [
    'a webhook endpoint was created (never with its secret)',
    { webhook: record('the endpoint: id, url, event types, enabled'), actor },
    ['webhook', 'actor'],
  ],
  'webhook.updated': [
    "a webhook endpoint's url, event types, description or enabled flag changed",
    { webhook: record('the endpoint after the change'), changes: { type: 'object' }, actor },
    ['webhook', 'actor'],
  ],
  'webhook.deleted': [
    'a webhook endpoint was deleted (its delivery log stays readable)',
    { webhook: record('the endpoint as it was'), actor },
    ['webhook', 'actor'],
  ],
  'webhook.secret_rotated': [
    "a webhook endpoint's signing secret was replaced (the old one signs for a while longer)",
    { webhook_id: str, actor },
    ['webhook_id', 'actor'],
  ],
  'webhook.disabled': [
    'a webhook endpoint was disabled because it answered 410 Gone',
    { webhook_id: str, reason: str, actor },
    ['webhook_id', 'reason', 'actor'],
  ],
  'redemption.outcome_recorded': [
    'an order outcome (chargeback, refund, fulfilment, abuse) was recorded',
    {
      redemption_id: str,
      campaign_id: str,
      outcome: str,
      amount_minor: { type: ['integer', 'null'] },
      occurred_at: str,
      label: { type: ['string', 'null'] },
      actor,
    },
    ['redemption_id', 'campaign_id', 'outcome'],
  ],
  'review.approved': [
    'a redemption held for review was approved',
    { redemption: redemptionRow, label: { type: ['string', 'null'] }, note: nullableStr, actor },
    ['redemption'],
  ],
  'review.rejected': [
    'a redemption held for review was rejected',
    { redemption: redemptionRow, label: { type: ['string', 'null'] }, note: nullableStr, actor },
    ['redemption'],
  ],
  'points.program_created': [
    'a loyalty points program was created',
    { program: record('the points program'), actor },
    ['program'],
  ],
  'points.credited': [
    'points were credited to a customer',
    { movement: record('the points movement row') },
    ['movement'],
  ],
  'points.debited': [
    'points were debited from a customer',
    { movement: record('the points movement row') },
    ['movement'],
  ],
  'points.converted': [
    'points were converted into a customer-bound coupon',
    { conversion: record('the conversion row'), code_id: str },
    ['conversion', 'code_id'],
  ],
  'points.refunded': [
    'the points of an unused, expired coupon were refunded',
    { conversion: record('the conversion row') },
    ['conversion'],
  ],
  'approval.requested': [
    "a change awaits a second person's approval",
    { approval: record('the approval request'), actor },
    ['approval'],
  ],
  'approval.approved': [
    'a pending change was approved and applied',
    { approval: record('the approval request'), actor },
    ['approval'],
  ],
  'approval.rejected': [
    'a pending change was rejected',
    { approval: record('the approval request'), actor },
    ['approval'],
  ],
  'alert.raised': [
    'a streaming detector raised an alert (once per detector key and episode); remediation subscribes to it',
    {
      alert_id: str,
      kind: {
        enum: ['redemption_spike', 'distinct_spike', 'refusal_wave', 'rollback_cycle', 'order_splitting'],
      },
      scope: {
        type: 'object',
        required: ['type', 'id'],
        properties: {
          type: {
            enum: ['code', 'campaign', 'partner', 'batch', 'address_block', 'person', 'device', 'address'],
          },
          id: str,
          campaign_id: str,
          partner: str,
          batch_id: str,
        },
        additionalProperties: false,
      },
      severity: { enum: ['page', 'ticket'] },
      observed: { type: 'number' },
      expected: { type: 'number' },
      interval_seconds: { type: 'number' },
      triggered_by_event_id: nullableStr,
      triggered_at: { type: 'string', format: 'date-time' },
      raised_at: { type: 'string', format: 'date-time' },
      detector_key: str,
      episode_start: { type: 'string', format: 'date-time' },
    },
    [
      'alert_id',
      'kind',
      'scope',
      'severity',
      'observed',
      'expected',
      'interval_seconds',
      'triggered_by_event_id',
      'triggered_at',
      'raised_at',
    ],
  ],
  'alert.acknowledged': [
    'someone acknowledged an alert',
    { alert_id: str, kind: str, from: str, to: str, actor, reason: nullableStr },
    ['alert_id', 'kind', 'from', 'to', 'actor'],
  ],
  'alert.resolved': [
    'an alert was resolved',
    { alert_id: str, kind: str, from: str, to: str, actor, reason: nullableStr },
    ['alert_id', 'kind', 'from', 'to', 'actor'],
  ],
  'approval.expired': [
    'a pending change expired unapproved',
    { approval: record('the approval request'), actor },
    ['approval'],
  ],
  'remediation.applied': [
    'a remediation policy acted on an alert (on a dry run: recorded what it would do, changing nothing)',
    remediationFields,
    [
      'remediation_id',
      'policy_id',
      'alert_id',
      'action',
      'target',
      'dry_run',
      'change',
      'expires_at',
      'actor',
    ],
  ],
  'remediation.lifted': [
    'a remediation ended: lifted by on-call or expired; its change was undone',
    { ...remediationFields, how: { enum: ['lifted', 'expired'] }, undo: { type: 'object' } },
    ['remediation_id', 'policy_id', 'alert_id', 'action', 'target', 'how', 'undo', 'actor'],
  ],
};

export function schemaOf(type) {
  const [description, properties, required] = PAYLOADS[type];
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: `https://promoguard.dev/schemas/events/${type}.json`,
    title: type,
    description: `${description}. Published on <NATS_SUBJECT_PREFIX>.${type} with the event id as Nats-Msg-Id.`,
    type: 'object',
    required: ['id', 'type', 'version', 'aggregateId', 'createdAt', 'payload'],
    properties: {
      id: {
        type: 'string',
        pattern: '^evt_',
        description: 'unique; deduplicate by it (delivery is at least once)',
      },
      type: { const: type },
      version: { const: VERSION },
      aggregateId: {
        type: 'string',
        description: 'the id of the thing that changed; order is kept per aggregate within one relay',
      },
      createdAt: { type: 'string', format: 'date-time', description: 'the commit, UTC' },
      payload: { type: 'object', required, properties, additionalProperties: true },
    },
    additionalProperties: false,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = path.resolve(import.meta.dirname, '../schemas/events');
  mkdirSync(dir, { recursive: true });
  for (const type of Object.keys(PAYLOADS)) {
    writeFileSync(path.join(dir, `${type}.json`), `${JSON.stringify(schemaOf(type), null, 2)}\n`);
  }
  console.log(`wrote ${Object.keys(PAYLOADS).length} schemas to ${dir}`);
}

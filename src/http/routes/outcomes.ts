/** Order outcomes of redemptions (M7): what the merchant learned after the order. */
import { Type } from 'typebox';
import type { App } from '../../app.js';
import { OUTCOME_KINDS } from '../../services/outcomes.js';
import type { RedemptionOutcome } from '../../store/outcomes.js';
import {
  AmountMinor,
  actorOf,
  component,
  ErrorResponses,
  iso,
  Nullable,
  RedemptionId,
  type Routes,
  StringEnum,
  strict,
  Text,
  Timestamp,
} from '../shared.js';

// ---------------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------------

const OutcomeKind = StringEnum(OUTCOME_KINDS, {
  description:
    '`chargeback` and `confirmed_abuse` label the decision abuse; `fulfilled` labels it legitimate unless it has a label',
});

const OutcomeBody = Type.Object(
  {
    outcome: OutcomeKind,
    amount_minor: Type.Optional(Nullable(AmountMinor)),
    note: Type.Optional(Text(500, 'Kept with the outcome and its label')),
    occurred_at: Type.Optional(Timestamp),
  },
  strict,
);

const Outcome = component(
  'Outcome',
  Type.Object({
    redemption_id: Type.String(),
    campaign_id: Type.String(),
    outcome: OutcomeKind,
    amount_minor: Nullable(Type.Integer()),
    note: Nullable(Type.String()),
    recorded_by: Type.String(),
    occurred_at: Type.String({ format: 'date-time' }),
    recorded_at: Type.String({ format: 'date-time' }),
    label: Nullable(
      StringEnum(['abuse', 'legitimate'] as const, { description: 'The label this report gave' }),
    ),
  }),
);

// ---------------------------------------------------------------------------------------------------
// Mapping
// ---------------------------------------------------------------------------------------------------

const outcomeJson = (o: RedemptionOutcome, label: 'abuse' | 'legitimate' | null) => ({
  redemption_id: o.redemptionId,
  campaign_id: o.campaignId,
  outcome: o.outcome,
  amount_minor: o.amountMinor,
  note: o.note,
  recorded_by: o.recordedBy,
  occurred_at: iso(o.occurredAt) as string,
  recorded_at: iso(o.recordedAt) as string,
  label,
});

// ---------------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------------

export const outcomeRoutes =
  (app: App): Routes =>
  async (server) => {
    server.post(
      '/redemptions/:id/outcome',
      {
        config: { scopes: ['checkout', 'fraud'] },
        schema: {
          tags: ['checkout'],
          summary: 'Record what became of the order: chargeback, refund, fulfilled or confirmed abuse',
          description:
            'One record per redemption and kind: a repeat answers 200 with the first record and changes nothing. ' +
            'The outcome is evented (`redemption.outcome_recorded`), counted (M7) and labels the decision.',
          params: Type.Object({ id: RedemptionId }),
          body: OutcomeBody,
          response: { 200: Outcome, 201: Outcome, ...ErrorResponses },
        },
      },
      async (request, reply) => {
        const b = request.body;
        const result = await app.outcomes.record(
          request.params.id,
          {
            outcome: b.outcome,
            amountMinor: b.amount_minor ?? null,
            note: b.note ?? null,
            occurredAt: b.occurred_at ?? null,
          },
          actorOf(request),
        );
        return reply.status(result.created ? 201 : 200).send(outcomeJson(result.outcome, result.labeled));
      },
    );
  };

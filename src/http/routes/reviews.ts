/** The review queue: redemptions held by a `review` rule, and the analyst's verdict on each. */
import { Type } from 'typebox';
import type { App } from '../../app.js';
import {
  actorOf,
  CampaignId,
  component,
  ErrorResponses,
  Nullable,
  Page,
  PageQuery,
  page,
  RedemptionId,
  type Routes,
  strict,
} from '../shared.js';
import { Decision, decisionJson, Label, Note } from './decisions.js';
import { Redemption, redemptionJson } from './redemptions.js';

// ---------------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------------

const Review = component(
  'Review',
  Type.Object({
    redemption: Redemption,
    decision: Nullable(Decision),
    linked_accounts: Type.Object({
      person_id: Nullable(Type.String()),
      customers: Type.Array(Type.String()),
      shared_identifiers: Type.Array(
        Type.Object({ type: Type.String(), hash: Type.String(), customers: Type.Array(Type.String()) }),
      ),
    }),
  }),
);

const Verdict = Type.Object(
  {
    label: Type.Optional(
      Type.Union([Label], {
        description: 'Default: `legitimate` for an approval, `abuse` for a rejection',
      }),
    ),
    note: Type.Optional(Note),
  },
  strict,
);

// ---------------------------------------------------------------------------------------------------
// Mapping
// ---------------------------------------------------------------------------------------------------

type PendingReview = Awaited<ReturnType<App['reviews']['pending']>>[number];

const reviewJson = (item: PendingReview) => ({
  redemption: redemptionJson(item.redemption),
  decision: item.decision ? decisionJson(item.decision.decision) : null,
  linked_accounts: {
    person_id: item.links.personId,
    customers: item.links.customers,
    shared_identifiers: item.links.sharedIdentifiers.map((s) => ({
      type: s.type,
      hash: s.hash,
      customers: s.customers,
    })),
  },
});

// ---------------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------------

export const reviewRoutes =
  (app: App): Routes =>
  async (server) => {
    const fraud = { scopes: ['fraud' as const] };

    server.get(
      '/reviews',
      {
        config: fraud,
        schema: {
          tags: ['risk'],
          summary: 'Redemptions held for review, oldest first, with their decision and linked accounts',
          querystring: Type.Object({ ...PageQuery, campaign_id: Type.Optional(CampaignId) }, strict),
          response: {
            200: Type.Object({ ...Page(Review).properties, pending: Type.Integer() }),
            ...ErrorResponses,
          },
        },
      },
      async (request) => {
        const limit = request.query.limit ?? 50;
        const [items, pending] = await Promise.all([
          app.reviews.pending({
            limit: limit + 1,
            after: request.query.cursor,
            campaignId: request.query.campaign_id,
          }),
          app.reviews.queueLength(),
        ]);
        return { ...page(items, limit, reviewJson, (item) => item.redemption.id), pending };
      },
    );

    for (const verdict of ['approve', 'reject'] as const) {
      server.post(
        `/reviews/:id/${verdict}`,
        {
          config: fraud,
          schema: {
            tags: ['risk'],
            summary:
              verdict === 'approve'
                ? 'Approve a held redemption'
                : 'Reject a held redemption: it is rolled back (exactly once) and `review.rejected` is emitted',
            description:
              'Repeating the same verdict returns the redemption unchanged; the other verdict afterwards is a ' +
              '409 `review_already_decided`. The label is kept on the decision (training data, rule precision).',
            params: Type.Object({ id: RedemptionId }),
            body: Verdict,
            response: { 200: Redemption, ...ErrorResponses },
          },
        },
        async (request) =>
          redemptionJson(
            await app.reviews.decide(
              request.params.id,
              verdict,
              request.body.label,
              request.body.note ?? null,
              actorOf(request),
            ),
          ),
      );
    }
  };

/**
 * The review queue: redemptions held by a `review` rule, the analyst who holds each case, and the
 * verdict on it (one case, or a ring of them at once).
 */
import { Type } from 'typebox';
import type { App } from '../../app.js';
import type { RiskAction as RiskActionName } from '../../domain/risk.js';
import type { Redemption as RedemptionRecord } from '../../store/rows.js';
import {
  actorOf,
  CampaignId,
  CustomerId,
  component,
  DecisionId,
  ErrorResponses,
  Nullable,
  Page,
  PageQuery,
  page,
  RedemptionId,
  type Routes,
  StringEnum,
  strict,
  Text,
  Timestamp,
} from '../shared.js';
import { Decision, decisionJson, Label, Note, RiskAction } from './decisions.js';
import { Redemption, redemptionJson } from './redemptions.js';

// ---------------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------------

const Assignment = Type.Object(
  {
    assigned_to: Type.String({ description: 'The console user id or API key id holding the case' }),
    assigned_at: Timestamp,
    locked_until: Timestamp,
    mine: Type.Boolean({ description: 'Held by the caller' }),
  },
  { description: 'Who holds the case until when; null when nobody does (or the lock ran out)' },
);

const Review = component(
  'Review',
  Type.Object({
    redemption: Redemption,
    assignment: Nullable(Assignment),
    age_seconds: Type.Integer({ description: 'Since the redemption was held' }),
    overdue: Type.Boolean({ description: 'Pending longer than REVIEW_SLA_MINUTES' }),
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

const DecisionSummary = Type.Object({
  id: DecisionId,
  created_at: Timestamp,
  operation: Type.String(),
  campaign_id: Type.String(),
  redemption_id: Nullable(Type.String()),
  action: RiskAction,
  outcome: StringEnum(['redeemed', 'blocked', 'challenged'] as const),
  because: Type.Array(Type.String()),
  label: Nullable(Label),
});

const ReviewCase = component(
  'ReviewCase',
  Type.Object({
    ...Review.properties,
    history: Type.Object(
      {
        redemptions: Type.Array(Redemption),
        decisions: Type.Array(DecisionSummary, { description: 'Also the attempts blocked or challenged' }),
      },
      { description: "The customer's recent redemptions and decisions, newest first (at most 20 each)" },
    ),
  }),
);

const ReviewQuery = Type.Object(
  {
    ...PageQuery,
    status: Type.Optional(
      StringEnum(['pending', 'approved', 'rejected'] as const, { description: 'Default `pending`' }),
    ),
    campaign_id: Type.Optional(CampaignId),
    rule_id: Type.Optional(
      Type.String({ pattern: '^rule_[0-9A-Za-z_]{1,64}$', description: 'A rule that fired on the decision' }),
    ),
    customer_id: Type.Optional(CustomerId),
    person_id: Type.Optional(Text(64, 'Every account of this person (`linked_accounts.person_id`)')),
    assigned: Type.Optional(
      StringEnum(['me', 'unassigned'] as const, {
        description: '`me`: cases the caller holds; `unassigned`: cases nobody holds',
      }),
    ),
    min_age_minutes: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 525_600, description: 'Held at least this long' }),
    ),
  },
  strict,
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

const BulkVerdict = Type.Object(
  {
    ids: Type.Array(RedemptionId, { minItems: 1, maxItems: 100, uniqueItems: true }),
    verdict: StringEnum(['approve', 'reject'] as const),
    label: Verdict.properties.label,
    note: Type.Optional(Note),
  },
  strict,
);

const BulkResult = Type.Object({
  results: Type.Array(
    Type.Object({
      id: Type.String(),
      outcome: StringEnum(
        ['decided', 'unchanged', 'locked', 'conflict', 'not_found', 'not_under_review'] as const,
        {
          description:
            '`decided` now; `unchanged`: it had this verdict already; `locked`: another analyst holds it; ' +
            '`conflict`: decided the other way; `not_found`; `not_under_review`: never held',
        },
      ),
      redemption: Nullable(Redemption),
    }),
  ),
  decided: Type.Integer({ description: 'Cases this request decided' }),
});

// ---------------------------------------------------------------------------------------------------
// Mapping
// ---------------------------------------------------------------------------------------------------

type ReviewItem = Awaited<ReturnType<App['reviews']['list']>>[number];
type ReviewCaseItem = Awaited<ReturnType<App['reviews']['case']>>;

function assignmentJson(r: RedemptionRecord, actor: string, now: Date) {
  if (!r.reviewAssignedTo || !r.reviewLockedUntil || r.reviewLockedUntil <= now) return null;
  return {
    assigned_to: r.reviewAssignedTo,
    assigned_at: (r.reviewAssignedAt ?? now).toISOString(),
    locked_until: r.reviewLockedUntil.toISOString(),
    mine: r.reviewAssignedTo === actor,
  };
}

const reviewJson = (item: ReviewItem, actor: string, now: Date, slaMinutes: number) => ({
  redemption: redemptionJson(item.redemption),
  assignment: assignmentJson(item.redemption, actor, now),
  age_seconds: Math.max(0, Math.floor((now.getTime() - item.redemption.createdAt.getTime()) / 1000)),
  overdue:
    item.redemption.reviewStatus === 'pending' &&
    now.getTime() - item.redemption.createdAt.getTime() > slaMinutes * 60_000,
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

const caseJson = (item: ReviewCaseItem, actor: string, now: Date, slaMinutes: number) => ({
  ...reviewJson(item, actor, now, slaMinutes),
  history: {
    redemptions: item.history.redemptions.map((r) => redemptionJson(r)),
    decisions: item.history.decisions.map((d) => ({
      id: d.id,
      created_at: d.createdAt.toISOString(),
      operation: d.operation,
      campaign_id: d.campaignId,
      redemption_id: d.redemptionId,
      action: d.action as RiskActionName,
      outcome: d.outcome as 'redeemed' | 'blocked' | 'challenged',
      because: d.because,
      label: d.label as 'abuse' | 'legitimate' | null,
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

    const sla = app.reviews.options.slaMinutes;
    const now = () => app.reviews.now();

    server.get(
      '/reviews',
      {
        config: fraud,
        schema: {
          tags: ['risk'],
          summary:
            'The review inbox: pending cases oldest first (decided ones newest first), with their decision and linked accounts',
          description:
            'Pending cases by default; filter by status, campaign, a rule that fired, customer, person, ' +
            'who holds them and age. `pending` is the whole queue length; `sla_minutes` the age past which ' +
            'a pending case is `overdue`.',
          querystring: ReviewQuery,
          response: {
            200: Type.Object({
              ...Page(Review).properties,
              pending: Type.Integer(),
              sla_minutes: Type.Integer(),
            }),
            ...ErrorResponses,
          },
        },
      },
      async (request) => {
        const q = request.query;
        const limit = q.limit ?? 50;
        const actor = actorOf(request);
        const [items, pending] = await Promise.all([
          app.reviews.list({
            limit: limit + 1,
            after: q.cursor,
            status: q.status ?? 'pending',
            campaignId: q.campaign_id,
            ruleId: q.rule_id,
            customerId: q.customer_id,
            personId: q.person_id,
            assigned: q.assigned,
            minAgeMinutes: q.min_age_minutes,
            actor,
          }),
          app.reviews.queueLength(),
        ]);
        const at = now();
        return {
          ...page(
            items,
            limit,
            (item) => reviewJson(item, actor, at, sla),
            (item) => item.redemption.id,
          ),
          pending,
          sla_minutes: sla,
        };
      },
    );

    server.get(
      '/reviews/:id',
      {
        config: fraud,
        schema: {
          tags: ['risk'],
          summary:
            "One case: the decision with every rule that fired and its values, the linked accounts, the customer's recent history",
          params: Type.Object({ id: RedemptionId }),
          response: { 200: ReviewCase, ...ErrorResponses },
        },
      },
      async (request) => caseJson(await app.reviews.case(request.params.id), actorOf(request), now(), sla),
    );

    server.post(
      '/reviews/next',
      {
        config: fraud,
        schema: {
          tags: ['risk'],
          summary:
            'Take the next case: the one the caller holds already, else the oldest pending case nobody holds',
          description:
            'The case is held for the caller for REVIEW_LOCK_MINUTES (taking it again extends the lock); ' +
            'meanwhile another analyst cannot decide it (409 `review_locked`). Analysts asking at the same ' +
            'time get different cases. `review` is null when every pending case is held.',
          response: { 200: Type.Object({ review: Nullable(Review) }), ...ErrorResponses },
        },
      },
      async (request) => {
        const actor = actorOf(request);
        const taken = await app.reviews.next(actor);
        return { review: taken ? reviewJson(taken, actor, now(), sla) : null };
      },
    );

    server.post(
      '/reviews/:id/take',
      {
        config: fraud,
        schema: {
          tags: ['risk'],
          summary: 'Take a named case (or extend the lock on one the caller holds)',
          params: Type.Object({ id: RedemptionId }),
          response: { 200: Review, ...ErrorResponses },
        },
      },
      async (request) => {
        const actor = actorOf(request);
        return reviewJson(await app.reviews.take(request.params.id, actor), actor, now(), sla);
      },
    );

    server.post(
      '/reviews/:id/release',
      {
        config: fraud,
        schema: {
          tags: ['risk'],
          summary: 'Give a case back to the queue (only its holder can; a case nobody holds is unchanged)',
          params: Type.Object({ id: RedemptionId }),
          response: { 200: Review, ...ErrorResponses },
        },
      },
      async (request) => {
        const actor = actorOf(request);
        return reviewJson(await app.reviews.release(request.params.id, actor), actor, now(), sla);
      },
    );

    server.post(
      '/reviews/bulk',
      {
        config: fraud,
        schema: {
          tags: ['risk'],
          summary: 'Decide several cases with one verdict, label and note (a ring): each decided and audited',
          description:
            'Each case is decided on its own as its single route would, so a repeat of the request changes ' +
            'nothing more. A case another analyst holds, or one decided the other way, is reported in ' +
            '`results`, not forced.',
          body: BulkVerdict,
          response: { 200: BulkResult, ...ErrorResponses },
        },
      },
      async (request) => {
        const b = request.body;
        const results = await app.reviews.decideMany(
          b.ids,
          b.verdict,
          b.label,
          b.note ?? null,
          actorOf(request),
        );
        return {
          results: results.map((r) => ({
            id: r.id,
            outcome: r.outcome,
            redemption: r.redemption ? redemptionJson(r.redemption) : null,
          })),
          decided: results.filter((r) => r.outcome === 'decided').length,
        };
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
              '409 `review_already_decided`; a case another analyst holds is a 409 `review_locked`. The ' +
              'label is kept on the decision (training data, rule precision); the verdict is audited.',
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

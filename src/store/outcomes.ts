/** Outcomes of redeemed orders (M7), one per redemption and kind, never edited. */
import type { Kysely, Selectable } from 'kysely';
import type { Database, OutcomeKind, RedemptionOutcomesTable } from './schema.js';

export type { OutcomeKind } from './schema.js';

export interface RedemptionOutcome {
  redemptionId: string;
  campaignId: string;
  outcome: OutcomeKind;
  amountMinor: number | null;
  note: string | null;
  recordedBy: string;
  occurredAt: Date;
  recordedAt: Date;
}

function outcomeFromRow(r: Selectable<RedemptionOutcomesTable>): RedemptionOutcome {
  return {
    redemptionId: r.redemption_id,
    campaignId: r.campaign_id,
    outcome: r.outcome,
    amountMinor: r.amount_minor,
    note: r.note,
    recordedBy: r.recorded_by,
    occurredAt: r.occurred_at,
    recordedAt: r.recorded_at,
  };
}

/** Insert the outcome unless the redemption already has one of its kind; null when it had. */
export async function insertOutcome(
  db: Kysely<Database>,
  o: Omit<RedemptionOutcome, 'recordedAt'>,
  now: Date,
): Promise<RedemptionOutcome | null> {
  const row = await db
    .insertInto('redemption_outcomes')
    .values({
      redemption_id: o.redemptionId,
      campaign_id: o.campaignId,
      outcome: o.outcome,
      amount_minor: o.amountMinor,
      note: o.note,
      recorded_by: o.recordedBy,
      occurred_at: o.occurredAt,
      recorded_at: now,
    })
    .onConflict((oc) => oc.columns(['redemption_id', 'outcome']).doNothing())
    .returningAll()
    .executeTakeFirst();
  return row ? outcomeFromRow(row) : null;
}

export async function listOutcomes(db: Kysely<Database>, redemptionId: string): Promise<RedemptionOutcome[]> {
  const rows = await db
    .selectFrom('redemption_outcomes')
    .selectAll()
    .where('redemption_id', '=', redemptionId)
    .orderBy('id')
    .execute();
  return rows.map(outcomeFromRow);
}

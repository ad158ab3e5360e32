import { type Kysely, sql } from 'kysely';

import type { Database } from './schema.js';

/** Revoke every code of a campaign (or of one partner) that has never been redeemed. One statement. */
export async function revokeUnredeemed(
  db: Kysely<Database>,
  campaignId: string,
  partner: string | null,
  now: Date,
): Promise<number> {
  let query = db
    .updateTable('codes')
    .set({ status: 'revoked', revoked_at: now })
    .where('campaign_id', '=', campaignId)
    .where('status', '=', 'active')
    .where('uses', '=', 0);
  if (partner !== null) query = query.where('partner', '=', partner);
  const result = await query.executeTakeFirst();
  return Number(result.numUpdatedRows);
}

export interface PartnerCap {
  partner: string;
  cap: number | null;
  used: number;
  codes: number;
}

export async function setPartnerCap(
  db: Kysely<Database>,
  campaignId: string,
  partner: string,
  cap: number | null,
): Promise<void> {
  // Only the cap is set: `used` is counted by every redemption of the partner's codes, capped or not,
  // in the redeem statement itself, so no count here can miss a redemption in flight.
  await db
    .insertInto('partner_caps')
    .values({ campaign_id: campaignId, partner, cap, used: 0 })
    .onConflict((oc) =>
      oc.columns(['campaign_id', 'partner']).doUpdateSet((eb) => ({ cap: eb.ref('excluded.cap') })),
    )
    .execute();
}

export async function listPartners(db: Kysely<Database>, campaignId: string): Promise<PartnerCap[]> {
  const { rows } = await sql<{ partner: string; cap: number | null; used: number | null; codes: number }>`
    SELECT p.partner, pc.cap, COALESCE(pc.used, p.used) AS used, p.codes
      FROM (SELECT partner, count(*) AS codes, sum(uses) AS used FROM codes
             WHERE campaign_id = ${campaignId} AND partner IS NOT NULL GROUP BY partner) p
      LEFT JOIN partner_caps pc ON pc.campaign_id = ${campaignId} AND pc.partner = p.partner
     ORDER BY p.partner`.execute(db);
  return rows.map((r) => ({ partner: r.partner, cap: r.cap, used: r.used ?? 0, codes: r.codes }));
}

export interface PersonLinks {
  personId: string | null;
  /** Each identifier shared by two or more of the person's customers, and who shares it. */
  sharedIdentifiers: { type: string; hash: string; customers: string[]; firstSeen: Date }[];
  customers: string[];
}

/** The person a customer belongs to, its other accounts, and the shared identifiers that link them. */
export async function personLinks(db: Kysely<Database>, customerId: string): Promise<PersonLinks> {
  const person = await db
    .selectFrom('identity_nodes')
    .select('person_id')
    .where('key', '=', `customer:${customerId}`)
    .executeTakeFirst();
  const personId = person?.person_id ?? null;
  if (personId === null) return { personId: null, sharedIdentifiers: [], customers: [customerId] };
  const { rows } = await sql<{ identifier_key: string; customers: string[]; first_seen: Date }>`
    SELECT e.identifier_key, array_agg(DISTINCT e.customer_id ORDER BY e.customer_id) AS customers,
           min(e.first_seen) AS first_seen
      FROM identity_edges e
      JOIN identity_nodes n ON n.key = e.identifier_key
     WHERE n.person_id = ${personId}
     GROUP BY e.identifier_key
    HAVING count(DISTINCT e.customer_id) > 1
     ORDER BY e.identifier_key`.execute(db);
  const members = await db
    .selectFrom('identity_nodes')
    .select('key')
    .where('person_id', '=', personId)
    .where('key', 'like', 'customer:%')
    .orderBy('key')
    .execute();
  return {
    personId,
    sharedIdentifiers: rows.map((r) => {
      const split = r.identifier_key.indexOf(':');
      return {
        type: r.identifier_key.slice(0, split),
        hash: r.identifier_key.slice(split + 1),
        customers: r.customers,
        firstSeen: r.first_seen,
      };
    }),
    customers: members.map((m) => m.key.slice('customer:'.length)),
  };
}
